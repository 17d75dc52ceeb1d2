/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-nfc-error.h"

G_DEFINE_QUARK(cp-nfc-error-quark, cp_nfc_error)

const char *cp_nfc_error_name(CpNfcError code)
{
	switch (code) {
	case CP_NFC_ERROR_OPEN:
		return "open";
	case CP_NFC_ERROR_IO:
		return "io";
	case CP_NFC_ERROR_NO_TARGET:
		return "no-target";
	case CP_NFC_ERROR_TARGET_LOST:
		return "target-lost";
	case CP_NFC_ERROR_NOT_NDEF:
		return "not-ndef";
	case CP_NFC_ERROR_STATUS:
		return "status";
	case CP_NFC_ERROR_PROTOCOL:
		return "protocol";
	case CP_NFC_ERROR_WRITE_INCOMPLETE:
		return "write-incomplete";
	case CP_NFC_ERROR_READ_ONLY:
		return "read-only";
	case CP_NFC_ERROR_NOT_SUPPORTED:
		return "not-supported";
	case CP_NFC_ERROR_TIMEOUT:
		return "timeout";
	}
	return "unknown";
}
