"""alarmhub_ingest_gps: the gateway for vehicle GPS terminals (JT/T 808, GT06, H02)."""
