"""alarmhub_ingest_gps."""
