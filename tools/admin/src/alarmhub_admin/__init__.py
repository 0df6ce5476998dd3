"""alarmhub-admin: the operator tool that brings alarmhub into service."""
