"""alarmhub_triage."""
