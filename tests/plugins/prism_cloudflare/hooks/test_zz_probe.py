import logging, time
from prism_cloudflare.hooks.d1 import D1Hook

def test_probe(cf, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    h = D1Hook()
    t = time.monotonic()
    print(h.list_databases()[:1], time.monotonic() - t)
    print(h.get_bookmark(cf.d1_id))
    print(h.test_connection())
    out, err = capfd.readouterr()
    print(caplog.text[:3000])
    print("OUT", out[:2000], "ERR", err[:2000])
    assert 0
