"""A real SMTP server for vigil-notify's email tests (aiosmtpd).

Usage: python3 smtp_sink.py PORT USER PASSWORD
Listens on 127.0.0.1:PORT, accepts AUTH PLAIN/LOGIN for USER/PASSWORD
without TLS, prints READY, then one JSON line per message received: the
envelope, the login used, the headers and the decoded text and HTML bodies.
"""
import email
import email.policy
import json
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
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
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        print(json.dumps(record), flush=True)
        return "250 OK"


controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=PORT,
    authenticator=authenticator,
    auth_require_tls=False,
)
controller.start()
print("READY", flush=True)
threading.Event().wait()
