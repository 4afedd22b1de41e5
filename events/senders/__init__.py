"""Who may send what: the registered senders, their secrets (hashed) and their grants."""
