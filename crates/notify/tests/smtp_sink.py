"""A real SMTP server for vigil-notify's email tests (aiosmtpd).

Usage: python3 smtp_sink.py PORT USER PASSWORD [CERT KEY]
Listens on 127.0.0.1:PORT, accepts AUTH PLAIN/LOGIN for USER/PASSWORD
without TLS, prints READY, then one JSON line per message received: the
envelope, the login used, the TLS version (null without TLS), the headers
and the decoded text and HTML bodies. With CERT and KEY (PEM files) it
offers STARTTLS and requires it before anything else, AUTH included.
"""
import email
import email.policy
import json
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
CERT_KEY = sys.argv[4:6]
LOGINS = {}


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER
        and auth_data.password == PASSWORD
    )
    if ok:
        LOGINS[id(session)] = (mechanism, auth_data.login.decode())
    return AuthResult(success=ok, handled=False)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        login = LOGINS.get(id(session))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_mechanism": login[0] if login else None,
            "auth_login": login[1] if login else None,
            # Set on the session STARTTLS started (asyncio's SSL extra info).
            "tls": session.ssl["cipher"][1] if session.ssl else None,
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        print(json.dumps(record), flush=True)
        return "250 OK"

    async def handle_exception(self, error):
        # One line on stderr, not a traceback: a client refusing the
        # certificate (as the STARTTLS test's does on purpose) ends here.
        cause = error.__cause__ or error
        print(f"smtp_sink: {type(cause).__name__}: {cause}", file=sys.stderr, flush=True)
        return f"500 Error: ({type(error).__name__}) {error}"


if CERT_KEY:
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(*CERT_KEY)
    tls = dict(tls_context=tls_context, require_starttls=True, auth_require_tls=True)
else:
    tls = dict(auth_require_tls=False)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=PORT,
    authenticator=authenticator,
    **tls,
)
controller.start()
print("READY", flush=True)
threading.Event().wait()
