"""alarmhub_ingest_camera."""
