"""alarmhub_sim."""
