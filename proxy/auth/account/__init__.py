"""``/account`` (issue 16): a signed-in user's own account, one module per section; routes.py
builds the page from the sections the settings allow."""
