/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every transport shares (cp-transport.h). */
#include "cp-transport.h"

const char *
cp_transport_state_name(CpTransportState state)
{
	switch (state) {
	case CP_TRANSPORT_STOPPED:
		return "stopped";
	case CP_TRANSPORT_STARTING:
		return "starting";
	case CP_TRANSPORT_CLOSED:
		return "closed";
	case CP_TRANSPORT_WAITING:
		return "waiting";
	case CP_TRANSPORT_SESSION:
		return "session";
	}
	return "unknown";
}

void
cp_transport_set_state(CpTransport *t, CpTransportState state, const GError *error)
{
	t->state = state;
	if (t->events.status)
		t->events.status(t, state, error, t->user_data);
}

gboolean
cp_transport_open_window(CpTransport *t, guint seconds, uint8_t device_state)
{
	if (!t->ops->open_window)
		return FALSE;
	t->ops->open_window(t, seconds, device_state);
	return TRUE;
}

void
cp_transport_free(CpTransport *t)
{
	if (t)
		t->ops->free(t);
}
