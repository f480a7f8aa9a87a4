"""How the admin writes dates and times (English): ISO dates, 24-hour times to the second with their time zone.

Syncs are read to the second (cursors, durations, heartbeats), and staff in several time zones compare them:
"2026-11-24 10:00:04 UTC", never "Nov. 24, 2026, 10 a.m.".
"""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i:s T"
TIME_FORMAT = "H:i:s"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
