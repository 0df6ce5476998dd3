"""alarmhub dispatch: routes confirmed alarms to police stations, runs incidents, serves the API and console."""
