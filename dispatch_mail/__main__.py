"""`python -m dispatch_mail`: the same as the `dispatch` command."""

from dispatch_mail.cli import main

main()
