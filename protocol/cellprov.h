/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Everything of the cellprov protocol library. */
#pragma once

#include "cp-ble.h"
#include "cp-buf.h"
#include "cp-crypto.h"
#include "cp-ecies.h"
#include "cp-error.h"
#include "cp-kdf.h"
#include "cp-keys.h"
#include "cp-milenage.h"
#include "cp-ndef.h"
#include "cp-records.h"
#include "cp-secret.h"
#include "cp-tlv.h"
