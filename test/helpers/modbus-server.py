"""A real Modbus server (Debian's python3-pymodbus) for the modbus source's tests, with known contents.

Usage: modbus-server.py CONTENTS.json tcp PORT | rtu DEVICE BAUD
CONTENTS.json: {"units": {"1": {"holding": [words], "input": [words], "coils": [bools], "discrete": [bools]}}}
Addresses start at 0 (zero_mode). Prints "ready" once it serves (TCP) or has opened the line (RTU).
"""
import asyncio
import json
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.transaction import ModbusRtuFramer


def context(path):
    with open(path) as f:
        units = json.load(f)["units"]
    slaves = {}
    for unit, tables in units.items():
        slaves[int(unit)] = ModbusSlaveContext(
            hr=ModbusSequentialDataBlock(0, tables.get("holding", [0])),
            ir=ModbusSequentialDataBlock(0, tables.get("input", [0])),
            co=ModbusSequentialDataBlock(0, tables.get("coils", [False])),
            di=ModbusSequentialDataBlock(0, tables.get("discrete", [False])),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


async def main():
    ctx = context(sys.argv[1])
    if sys.argv[2] == "tcp":
        server = await StartAsyncTcpServer(
            context=ctx, address=("127.0.0.1", int(sys.argv[3])), defer_start=True, allow_reuse_address=True
        )
        print("ready", flush=True)
        await server.serve_forever()
    else:
        server = await StartAsyncSerialServer(
            context=ctx, framer=ModbusRtuFramer, port=sys.argv[3], baudrate=int(sys.argv[4]), defer_start=True
        )
        await server.start()
        print("ready", flush=True)
        await asyncio.Event().wait()


asyncio.run(main())
