/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tests: a local HTTPS server that speaks the SM's device endpoints
 * (sm-https.py, $CP_SM_HTTPS), with a test CA made afresh by openssl(1).
 */
#pragma once

#include <glib.h>

typedef struct {
	char *dir;        /* answers (<name>.json) and requests.log */
	char *ca;         /* the CA that signed the server's certificate */
	char *other_ca;   /* a CA that did not */
	char *url;        /* https://localhost:PORT */
	GPid pid;
} CpTestHttps;

/* Make the CAs and the certificate for localhost in dir, start the server. */
void cp_test_https_start(CpTestHttps *s, const char *dir);
void cp_test_https_stop(CpTestHttps *s);
/* Write dir/<name>.json (NULL json: remove it). */
void cp_test_https_answer(CpTestHttps *s, const char *name, const char *json);
/* The requests so far, one JSON line each (NULL-terminated, g_strfreev). */
char **cp_test_https_requests(CpTestHttps *s);
