"""Getting an issue into inboxes: the audience, the journal, the SMTP engine and its rate
limit, the plan and outcome of a send, and its status.
"""
