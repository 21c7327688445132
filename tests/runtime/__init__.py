"""The process runtime: child processes, the `switchboard up` supervisor."""
