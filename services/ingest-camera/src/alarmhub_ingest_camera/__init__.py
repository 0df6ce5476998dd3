"""alarmhub ingest-camera: Hikvision ISAPI, ONVIF, GB/T 28181 and a generic webhook into ``alarms.raw``."""
