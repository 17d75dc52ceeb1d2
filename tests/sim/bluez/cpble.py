# SPDX-License-Identifier: LGPL-2.1-or-later
"""The BLE framing codec of libcellprov-protocol (protocol/cp-ble.h) from
Python through ctypes, for tests that play a phone or a device over the
BlueZ stand-in (docs/ble.md). CP_PROTOCOL_LIB names the library file.

    link = Link(mtu=23)
    link.send(b"\\x01\\x01")
    for seg in link.segments(): write(seg)
    msg = link.receive(value, offset=0)     # bytes once a message is whole
"""

import ctypes
import os
import re
import subprocess
import sys
import time

SERVICE_UUID = "584971d3-8619-438a-8a65-74a2e1c8bb34"
RX_UUID = "928f6d43-6900-4a8e-87a0-2a7fda6c13dd"
TX_UUID = "e0d26ddc-206e-4355-abf1-436c5043c43d"


class _Buf(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t),
                ("cap", ctypes.c_size_t), ("failed", ctypes.c_bool)]


_lib = None


def run_under_sanitizer():
    """A library built with gcc's AddressSanitizer loads into python3 only
    with the sanitizer's runtime loaded first: call this before anything
    else, and when CP_PROTOCOL_LIB needs it, the script runs again with the
    runtime preloaded (leak checks off for python3 itself). The processes
    it starts get the environment it was given."""
    if os.environ.pop("CP_SANITIZER_RERUN", None):
        os.environ.pop("LD_PRELOAD", None)
        asan = os.environ.pop("CP_SANITIZER_ASAN_OPTIONS", "")
        if asan:
            os.environ["ASAN_OPTIONS"] = asan
        else:
            os.environ.pop("ASAN_OPTIONS", None)
        return
    path = os.environ.get("CP_PROTOCOL_LIB")
    if not path:
        return
    r = subprocess.run(["ldd", path], capture_output=True, text=True)
    m = re.search(r"libasan\.so\S* => (\S+)", r.stdout)
    if not m:
        return
    env = dict(os.environ, LD_PRELOAD=m.group(1), CP_SANITIZER_RERUN="1",
               CP_SANITIZER_ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", ""))
    env["ASAN_OPTIONS"] = ":".join(x for x in (env["CP_SANITIZER_ASAN_OPTIONS"], "detect_leaks=0") if x)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def lib():
    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(os.environ["CP_PROTOCOL_LIB"])
        _lib.cp_ble_link_new.restype = ctypes.c_void_p
        _lib.cp_ble_link_new.argtypes = [ctypes.c_uint16, ctypes.c_uint64]
        _lib.cp_ble_link_free.argtypes = [ctypes.c_void_p]
        _lib.cp_ble_link_set_mtu.argtypes = [ctypes.c_void_p, ctypes.c_uint16]
        _lib.cp_ble_link_receive.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t,
                                             ctypes.c_char_p, ctypes.c_size_t,
                                             ctypes.POINTER(ctypes.c_bool)]
        _lib.cp_ble_link_message.restype = ctypes.POINTER(ctypes.c_uint8)
        _lib.cp_ble_link_message.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        _lib.cp_ble_link_take.argtypes = [ctypes.c_void_p]
        _lib.cp_ble_link_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        _lib.cp_ble_link_sending.restype = ctypes.c_bool
        _lib.cp_ble_link_sending.argtypes = [ctypes.c_void_p]
        _lib.cp_ble_link_next_segment.argtypes = [ctypes.c_void_p, ctypes.c_uint64,
                                                  ctypes.POINTER(_Buf)]
        _lib.cp_ble_link_check.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        _lib.cp_ble_link_deadline.restype = ctypes.c_uint64
        _lib.cp_ble_link_deadline.argtypes = [ctypes.c_void_p]
        _lib.cp_buf_clear.argtypes = [ctypes.POINTER(_Buf)]
        _lib.cp_error_name.restype = ctypes.c_char_p
        _lib.cp_error_name.argtypes = [ctypes.c_int]
    return _lib


def now_ms():
    return int(time.monotonic() * 1000)


class BleError(Exception):
    def __init__(self, code):
        self.code = code
        self.name = lib().cp_error_name(code).decode()
        Exception.__init__(self, "%s (0x%04x)" % (self.name, code))


class Link:
    def __init__(self, mtu=23):
        self.l = lib().cp_ble_link_new(mtu, now_ms())
        if not self.l:
            raise ValueError("MTU %d" % mtu)

    def close(self):
        if self.l:
            lib().cp_ble_link_free(self.l)
            self.l = None

    def set_mtu(self, mtu):
        err = lib().cp_ble_link_set_mtu(self.l, mtu)
        if err:
            raise BleError(err)

    def receive(self, value, offset=0):
        """One write or indication; the message when one is whole."""
        ready = ctypes.c_bool(False)
        value = bytes(value)
        err = lib().cp_ble_link_receive(self.l, now_ms(), offset, value, len(value),
                                        ctypes.byref(ready))
        if err:
            raise BleError(err)
        if not ready.value:
            return None
        n = ctypes.c_size_t(0)
        p = lib().cp_ble_link_message(self.l, ctypes.byref(n))
        msg = ctypes.string_at(p, n.value)
        lib().cp_ble_link_take(self.l)
        return msg

    def send(self, msg):
        err = lib().cp_ble_link_send(self.l, bytes(msg), len(msg))
        if err:
            raise BleError(err)

    def sending(self):
        return lib().cp_ble_link_sending(self.l)

    def segments(self):
        """Every segment to send now."""
        out = []
        while True:
            b = _Buf()
            err = lib().cp_ble_link_next_segment(self.l, now_ms(), ctypes.byref(b))
            seg = ctypes.string_at(b.data, b.len) if b.len else b""
            lib().cp_buf_clear(ctypes.byref(b))
            if err:
                raise BleError(err)
            if not seg:
                return out
            out.append(seg)

    def check(self):
        err = lib().cp_ble_link_check(self.l, now_ms())
        if err:
            raise BleError(err)

    def deadline_in_ms(self):
        return max(0, lib().cp_ble_link_deadline(self.l) - now_ms())
