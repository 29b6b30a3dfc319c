/* zerolab public API: include this one header. Compile with `pkg-config --cflags zerolab`. */
#ifndef ZEROLAB_H
#define ZEROLAB_H

#include "core/status.h"
#include "core/log.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "core/device.h"
#include "core/tensor.h"
#include "sim/ledger.h"
#include "backends/ops.h"

#endif
