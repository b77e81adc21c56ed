#!/usr/bin/env python3
"""Runs kosoku with one documented workaround: kosoku 0.1.0 defect B.

In fuzzingserver mode (kosoku as the server, the client under test connecting), the
13.* cases accept the client's permessage-deflate offer through functions that check
`offer.acceptNoContextTakeover` before asking for client_no_context_takeover
(13.2, 13.5, 13.6, and 13.7's first choice). The original Autobahn suite's offer
parser defaulted that flag to True (a client can always be asked not to use context
takeover, RFC 7692 §7.1.1.1); kosoku's native parser defaults it to False, so those
cases come out UNIMPLEMENTED for any client. Here each parsed offer is re-created
with acceptNoContextTakeover=True before the case's own accept logic runs. Nothing
else changes. The harness uses this only for group 13 in client mode, and says so.

Usage: kosoku_shim.py [kosoku arguments]
"""

import sys

import kosoku.cases as cases
from kosoku._cli import main
from kosoku._kosoku import PerMessageDeflateOffer


def as_original_parser(offer):
    if not isinstance(offer, PerMessageDeflateOffer):
        return offer
    return PerMessageDeflateOffer(
        acceptNoContextTakeover=True,
        acceptMaxWindowBits=offer.acceptMaxWindowBits,
        requestNoContextTakeover=offer.requestNoContextTakeover,
        requestMaxWindowBits=offer.requestMaxWindowBits,
    )


patched = 0
for case_id, cls in cases.CASES.items():
    accept = cls.__dict__.get("SERVER_ACCEPT")
    if case_id.startswith("13.") and accept is not None:

        def wrapped(self, offers, _accept=accept):
            return _accept(self, [as_original_parser(o) for o in offers])

        cls.SERVER_ACCEPT = wrapped
        patched += 1

if patched != 126:
    sys.exit(f"kosoku_shim: expected to wrap 126 13.* cases, found {patched}; kosoku changed")

if __name__ == "__main__":
    sys.argv[0] = "kosoku"
    sys.exit(main())
