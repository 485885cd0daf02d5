"""`dispatch bounces`: the return mailbox read, each message classified, and the store told once."""
