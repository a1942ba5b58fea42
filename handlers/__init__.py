"""Channel-neutral use cases: intake, citizen commands, staff and admin actions."""
