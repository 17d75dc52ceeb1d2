/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cp-backend.h"

#include "cp-glib.h"

void
cp_backend_result_free(CpBackendResult *r)
{
	if (!r)
		return;
	g_free(r->registered_plmn);
	g_free(r->operator_name);
	g_free(r->imsi);
	g_free(r);
}

void
cp_backend_free(CpBackend *b)
{
	if (b)
		b->ops->free(b);
}

const char *
cp_backend_phase_name(CpBackendPhase p)
{
	switch (p) {
	case CP_PHASE_PREPARING:
		return "preparing";
	case CP_PHASE_WRITING:
		return "writing";
	case CP_PHASE_RESETTING:
		return "resetting";
	case CP_PHASE_REGISTERING:
		return "registering";
	case CP_PHASE_RESTORING:
		return "restoring";
	}
	return "?";
}
