/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "util/macros.h"

/* The one table of Qubes exception classes. Each has its upstream Python class name (what the
 * Admin API puts on the wire), a D-Bus error name org.qubes_os.Admin1.Error.<Name> and the wire
 * name a client sees (the class itself, except for our own authorization errors, which travel as
 * PermissionDenied). Order matters only for readability. */
#define QUBES_ERRORS(X)                                                          \
        X(QUBES_EXCEPTION, "QubesException")                                     \
        X(VM_NOT_FOUND, "QubesVMNotFoundError")                                  \
        X(VM_INVALID_UUID, "QubesVMInvalidUUIDError")                            \
        X(VM_ALREADY_EXISTS, "QubesVMAlreadyExistsError")                        \
        X(VM_ERROR, "QubesVMError")                                              \
        X(VM_IN_USE, "QubesVMInUseError")                                        \
        X(VM_NOT_STARTED, "QubesVMNotStartedError")                              \
        X(VM_NOT_RUNNING, "QubesVMNotRunningError")                              \
        X(VM_NOT_PAUSED, "QubesVMNotPausedError")                                \
        X(VM_CANCELLED_PAUSE, "QubesVMCancelledPauseError")                      \
        X(VM_NOT_SUSPENDED, "QubesVMNotSuspendedError")                          \
        X(VM_NOT_HALTED, "QubesVMNotHaltedError")                                \
        X(VM_SHUTDOWN_TIMEOUT, "QubesVMShutdownTimeoutError")                    \
        X(NO_TEMPLATE, "QubesNoTemplateError")                                   \
        X(MEMORY, "QubesMemoryError")                                            \
        X(POOL_IN_USE, "QubesPoolInUseError")                                    \
        X(VALUE, "QubesValueError")                                              \
        X(PROPERTY_VALUE, "QubesPropertyValueError")                             \
        X(NO_SUCH_PROPERTY, "QubesNoSuchPropertyError")                          \
        X(NOT_IMPLEMENTED, "QubesNotImplementedError")                           \
        X(BACKUP_PROFILE_NOT_FOUND, "QubesBackupProfileNotFoundError")           \
        X(BACKUP_CANCELLED, "BackupCancelledError")                              \
        X(BACKUP_ALREADY_RUNNING, "BackupAlreadyRunningError")                   \
        X(FEATURE_NOT_FOUND, "QubesFeatureNotFoundError")                        \
        X(TAG_NOT_FOUND, "QubesTagNotFoundError")                                \
        X(LABEL_NOT_FOUND, "QubesLabelNotFoundError")                            \
        X(LABEL_IN_USE, "QubesLabelInUseError")                                  \
        X(DEVICE_NOT_ASSIGNED, "DeviceNotAssigned")                              \
        X(DEVICE_NOT_FOUND, "DeviceNotFound")                                    \
        X(DEVICE_ALREADY_ATTACHED, "DeviceAlreadyAttached")                      \
        X(DEVICE_ALREADY_ASSIGNED, "DeviceAlreadyAssigned")                      \
        X(UNRECOGNIZED_DEVICE, "UnrecognizedDevice")                             \
        X(UNEXPECTED_DEVICE_PROPERTY, "UnexpectedDeviceProperty")                \
        X(STORAGE_POOL, "StoragePoolException")                                  \
        X(VOLUME_COPY_IN_USE, "QubesVolumeCopyInUseError")                       \
        X(VOLUME_REVISION_NOT_FOUND, "QubesVolumeRevisionNotFoundError")         \
        X(POOL_NOT_FOUND, "QubesPoolNotFoundError")                              \
        X(VOLUME_NOT_FOUND, "QubesVolumeNotFoundError")                          \
        X(PROTOCOL, "ProtocolError")                                             \
        X(UNRECOGNIZED_ASSIGNMENT_MODE, "QubesUnrecognizedDeviceAssignmentMode") \
        X(VOLUME_COPY_TOKEN_NOT_FOUND, "QubesVolumeCopyTokenNotFoundError")      \
        X(INVALID_TAG, "QubesInvalidTagError")                                   \
        X(INVALID_LABEL, "QubesInvalidLabelError")                               \
        X(INVALID_LABEL_VALUE, "QubesInvalidLabelValueError")                    \
        X(PERMISSION_DENIED, "PermissionDenied")                                 \
        X(NOT_AUTHORIZED, "NotAuthorized")                                       \
        X(NOT_AUTHORIZED_CAN_OBTAIN, "NotAuthorizedCanObtain")                   \
        X(NOT_AUTHORIZED_DISMISSED, "NotAuthorizedDismissed")

typedef enum QubesErrorCode {
        QERR_NONE = 0,
#define X(code, name) QERR_##code,
        QUBES_ERRORS(X)
#undef X
                _QERR_MAX,
} QubesErrorCode;

#define QUBES_DBUS_ERROR_PREFIX "org.qubes_os.Admin1.Error."

/* A Qubes error: the exception class, a %-style format (only "%s" and "%%") and its fields.
 * The message a user reads is the format with the fields substituted, exactly as upstream
 * qubesd would have printed it; clients may translate the format first. */
typedef struct QError {
        QubesErrorCode code;
        char *format;
        char **fields;
        char *traceback; /* with qerror_set_debug(true): where the error was raised (C backtrace) */
} QError;

/* --debug: record a C backtrace in every error set from now on. */
void qerror_set_debug(bool b);

/* Sets *e (if e is non-NULL) from a format whose every "%s" consumes one const char* argument
 * (NULL is rendered as "None"). Returns -EINVAL so callers can "return qerror_set(...)". */
int qerror_set(QError *e, QubesErrorCode code, const char *format, ...);
/* Same with the fields in an array. */
int qerror_setv(QError *e, QubesErrorCode code, const char *format, const char *const *fields, size_t n);
void qerror_done(QError *e);
/* Move src into dst (dst is cleared first). */
void qerror_move(QError *dst, QError *src);
static inline bool qerror_is_set(const QError *e) {
        return e && e->code != QERR_NONE;
}
/* The substituted message, malloc'ed (NULL on OOM). */
char *qerror_message(const QError *e);
/* Substitute fields into a format; shared with clients (the shim). */
char *qerror_format_message(const char *format, char *const *fields);

const char *qubes_error_class_name(QubesErrorCode code); /* "QubesVMNotFoundError" */
const char *qubes_error_wire_name(QubesErrorCode code);  /* class name on the Admin API wire */
const char *qubes_error_dbus_name(QubesErrorCode code);  /* "org.qubes_os.Admin1.Error.…" */
QubesErrorCode qubes_error_from_dbus_name(const char *name);
/* Whether this class is (a subclass of) ProtocolError / PermissionDenied upstream. */
bool qubes_error_is_protocol(QubesErrorCode code);
bool qubes_error_is_permission(QubesErrorCode code);

DEFINE_TRIVIAL_CLEANUP_FUNC(QError *, qerror_done);
#define _cleanup_qerror_ _cleanup_(qerror_done)
