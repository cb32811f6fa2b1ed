import meltica.api.app as appmod
orig = appmod.sse_events
async def wrapped(*a, **k):
    print("GEN START")
    try:
        async for x in orig(*a, **k):
            yield x
    except BaseException as e:
        print("GEN EXC", type(e).__name__); raise
    finally:
        print("GEN END")
appmod.sse_events = wrapped
from tests.api.test_stream_slots import *  # noqa
