"""alarmhub_ingest_contactid."""
