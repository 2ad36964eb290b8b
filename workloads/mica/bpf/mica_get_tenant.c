// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * mica_get_tenant.c -- MICA's GET (mica_get.c, unchanged) whose every reply
 * ends with an 8-byte per-tenant salt (MICA_TENANT_SALT_BYTES).
 *
 * The object is compiled once, with MICA_TENANT_SALT_PLACEHOLDER as the salt.
 * For each tenant, naam-mica (src/tenant.rs) writes that tenant's salt over
 * every lddw immediate holding the placeholder, so each tenant registers its
 * own program: distinct bytecode, verified, stored (and JIT-compiled) apart.
 * Clients check the salt of each reply against their tenant's, so an answer
 * computed by another tenant's program is detected.
 */
#include "mica_abi.h"

#define MICA_TENANT_SALT ((naam_u64)MICA_TENANT_SALT_PLACEHOLDER)

#include "mica_get.c"
