"""The mail tests' SMTP server: aiosmtpd (Debian's python3-aiosmtpd, run by
/usr/bin/python3), keeping each message it accepts as N.eml in DIR with N.json beside it
(envelope sender and recipients, whether the session was TLS, who authenticated).

    smtp_sink.py --listen 127.0.0.1:PORT --dir DIR
                 [--starttls CERT KEY] [--smtps CERT KEY] [--auth USER:PASSWORD]
                 [--reply "451 4.3.0 Try again later"]

--starttls offers STARTTLS (and requires it before MAIL); --smtps speaks TLS from the
first byte; --auth requires AUTH (over TLS only) with these credentials; --reply answers
every RCPT with this reply instead of accepting it. Runs until killed.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory, reply):
        self.directory = directory
        self.reply = reply
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reply:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, str(self.count))
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": (
                session.auth_data.login.decode()
                if isinstance(session.auth_data, LoginPassword)
                else None
            ),
        }
        # Whole files only: written aside, then renamed (the test polls the directory).
        for suffix, content in ((".eml", envelope.original_content), (".json", json.dumps(meta).encode())):
            with open(base + suffix + ".partial", "wb") as f:
                f.write(content)
            os.rename(base + suffix + ".partial", base + suffix)
        return "250 Message accepted"


def tls_context(cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--smtps", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth")
    parser.add_argument("--reply")
    args = parser.parse_args()
    host, port = args.listen.rsplit(":", 1)
    handler = Sink(args.dir, args.reply)

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, password = args.auth.split(":", 1)
        ok = isinstance(auth_data, LoginPassword) and auth_data == LoginPassword(
            user.encode(), password.encode()
        )
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    def factory():
        return SMTP(
            handler,
            hostname="sink.test",
            tls_context=tls_context(*args.starttls) if args.starttls else None,
            require_starttls=bool(args.starttls),
            authenticator=authenticator if args.auth else None,
            auth_required=bool(args.auth),
            auth_require_tls=True,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            factory,
            host=host,
            port=int(port),
            ssl=tls_context(*args.smtps) if args.smtps else None,
        )
    )
    print("listening", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
