"""Zammad's Generic CTI rules, as pure functions and a call store.

Nothing in this package knows about HTTP or Flask: it takes the parameter map
Zammad would build (Rails params) and gives back the answer Zammad would send.
Each module holds one rule family, so a rule is found in one guess:

- ``errors``     the error answers and Zammad's random "Error ID" texts
- ``params``     Rails parameter folding (``user[]`` collects, repeats keep the last)
- ``config``     the mock's configuration: token, switch, ``cti_config``, contacts
- ``routing``    block list (reject) and outbound caller-ID routing (dial)
- ``caller_id``  phone-number normalisation and caller identification
- ``calls``      the caller log and the newCall/answer/hangup life cycle
- ``endpoint``   the order of checks for ``POST /api/v1/cti/{token}``
"""
