"""Alerts for supervisors: rules judged on the live figures, notifications to receivers."""
