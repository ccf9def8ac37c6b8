"""The embedded sandbox: a small copy of the platform run as local processes we own."""
