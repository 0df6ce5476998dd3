"""alarmhub_dispatch."""
