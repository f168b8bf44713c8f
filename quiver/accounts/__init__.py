"""People's accounts: users with passwords, their roles in teams, web sessions and
sign-in throttling, kept in the config store for the developer portal and the
operator console (``quiver.web``) and the ``quiver admin user`` commands.

    user = create_user(store, "ada@example.com", "a long passphrase", is_admin=True)
    user = sign_in(store, "ada@example.com", "a long passphrase", address="127.0.0.1")
    cookie, session = create_session(store, "console", user_id=user.id)

Every function takes the store and runs its own short transaction; the slow ones
(scrypt) must run off the event loop.  Nothing here knows about HTTP.
"""
