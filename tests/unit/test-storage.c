/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Storage drivers in a temporary directory: validation, pools (add, info, remove), volumes
 * created and removed with their qube, Info, import through a worker job, revisions and revert
 * (file-reflink, by reflink or by the sparse-copy fallback), and path safety (symlinks, vids). */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "model/model.h"
#include "storage/storage.h"
#include "util/strv.h"

static int failures;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

/* The call failed with this class and a message starting with prefix; clears the error. */
#define CHECK_ERR(r, e, code, prefix) check_err(__LINE__, r, e, code, prefix)
static void check_err(int line, int r, QError *e, QubesErrorCode code, const char *prefix) {
        _cleanup_free_ char *m = qerror_message(e);
        if (r >= 0 || e->code != code || !m || !startswith(m, prefix)) {
                fprintf(stderr, "%s:%d: got r=%d %s \"%s\", want %s \"%s…\"\n", __FILE__, line, r,
                        qubes_error_class_name(e->code), strempty(m), qubes_error_class_name(code), prefix);
                failures++;
        }
        qerror_done(e);
}

static void test_validation(void) {
        QError e = {};
        int64_t v;
        uint64_t u;

        CHECK(storage_validate_number("0", "volume size", false, &v, &e) == 0 && v == 0);
        CHECK(storage_validate_number("-1", "revisions to keep", true, &v, &e) == 0 && v == -1);
        CHECK_ERR(storage_validate_number("01", "volume size", false, &v, &e), &e, QERR_PROTOCOL,
                  "Volume size contains spurious leading zeros");
        CHECK_ERR(storage_validate_number("-1", "volume size", false, &v, &e), &e, QERR_PROTOCOL,
                  "Volume size contains non ASCII digits");
        CHECK_ERR(storage_validate_number("+1", "volume size", false, &v, &e), &e, QERR_PROTOCOL,
                  "Volume size contains non ASCII digits");
        CHECK_ERR(storage_validate_number("", "volume size", false, &v, &e), &e, QERR_PROTOCOL,
                  "Volume size contains non ASCII digits");
        CHECK_ERR(storage_validate_number("12345678901234567890", "volume size", false, &v, &e), &e, QERR_PROTOCOL,
                  "Volume size is bigger than 19 decimal digits");
        CHECK_ERR(storage_parse_size("9999999999999999999", "volume size", &u, &e), &e, QERR_VALUE,
                  "Volume size is too large");
        CHECK_ERR(storage_parse_size("2305843009213693952", "volume size", &u, &e), &e, QERR_VALUE,
                  "Volume size is larger than the maximum");
        CHECK(storage_parse_size("1152921504606846976", "volume size", &u, &e) == 0);

        CHECK(volume_vid_valid("appvms/work/private"));
        CHECK(volume_vid_valid("6.6.1-1.fc37"));
        CHECK(!volume_vid_valid("../etc/passwd"));
        CHECK(!volume_vid_valid("appvms/../../x"));
        CHECK(!volume_vid_valid("/etc/passwd"));
        CHECK(!volume_vid_valid("appvms//x"));
        CHECK(!volume_vid_valid("appvms/x/"));
        CHECK(!volume_vid_valid("appvms/x y"));
        CHECK(!volume_vid_valid(""));

        char t[STORAGE_TOKEN_LEN + 1], t2[STORAGE_TOKEN_LEN + 1];
        CHECK(storage_token_new(t) == 0 && storage_token_valid(t));
        CHECK(storage_token_new(t2) == 0 && !streq(t, t2));
        CHECK(!storage_token_valid("short"));
        CHECK(!storage_token_valid("0123456789abcdef0123456789abcde!"));
        CHECK(storage_revision_valid("1") && storage_revision_valid("old") && !storage_revision_valid("../1"));
}

static int add_pool(App *app, const char *driver, QError *e, ...) {
        _cleanup_strv_free_ char **l = NULL;
        va_list ap;
        va_start(ap, e);
        for (const char *s; (s = va_arg(ap, const char *));)
                (void) strv_extend(&l, s);
        va_end(ap);
        return storage_pool_add(app, driver, l, NULL, e);
}

static bool file_size_is(const char *path, off_t size) {
        struct stat st;
        return stat(path, &st) == 0 && st.st_size == size;
}

static int write_random(const char *path, size_t size) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        _cleanup_close_ int rnd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        char buf[65536];
        if (fd < 0 || rnd < 0)
                return -errno;
        for (size_t done = 0; done < size; done += sizeof buf) {
                if (read(rnd, buf, sizeof buf) != (ssize_t) sizeof buf ||
                    write(fd, buf, sizeof buf) != (ssize_t) sizeof buf)
                        return -EIO;
        }
        return 0;
}

static bool same_content(const char *a, const char *b) {
        _cleanup_free_ char *cmd = NULL;
        if (asprintf(&cmd, "cmp -s '%s' '%s'", a, b) < 0)
                return false;
        return system(cmd) == 0;
}

/* Import the file src into a volume through a data operation, as the bus layer does (there on a
 * worker thread). */
static int import_file(App *app, Domain *d, const char *vol, const char *src, uint64_t size, QError *e) {
        _cleanup_(storage_volume_donep) StorageVolume v = {};
        _cleanup_(storage_data_op_freep) StorageDataOp *j = NULL;
        int r = storage_volume_get(app, d, vol, &v, e);
        if (r < 0)
                return r;
        j = storage_data_op_new(STORAGE_OP_IMPORT, &v);
        if (!j)
                return -ENOMEM;
        j->size = size;
        j->in_fd = open(src, O_RDONLY | O_CLOEXEC);
        r = v.driver->import_begin(&v, size, &j->out_fd, e);
        if (r < 0)
                return r;
        r = storage_data_op_run(j);
        if (r < 0)
                qerror_move(e, &j->error);
        return j->result;
}

static void test_pools_and_volumes(const char *tmp) {
        _cleanup_app_free_ App *app = NULL;
        _cleanup_free_ char *fdir = NULL, *rdir = NULL, *rdir2 = NULL, *p = NULL, *info = NULL, *src = NULL,
                            *src2 = NULL, *outside = NULL, *link = NULL;
        QError e = {};
        Domain *d = NULL, *d2 = NULL;
        int r;

        CHECK(asprintf(&fdir, "%s/filepool", tmp) > 0 && asprintf(&rdir, "%s/reflinkpool", tmp) > 0 &&
              asprintf(&rdir2, "%s/reflink-checked", tmp) > 0);
        CHECK(app_new(tmp, &app) == 0 && app_init_default(app) == 0);

        /* Add: the upstream rules */
        CHECK_ERR(add_pool(app, "nosuch", &e, "name", "x", NULL), &e, QERR_PERMISSION_DENIED,
                  "Argument not in 'available drivers'");
        CHECK_ERR(add_pool(app, "file", &e, "name", "x", "name", "y", NULL), &e, QERR_PROTOCOL,
                  "Options must be unique");
        CHECK_ERR(add_pool(app, "file", &e, "dir_path", fdir, NULL), &e, QERR_PROTOCOL,
                  "Pool configuration must contain key: name");
        CHECK_ERR(add_pool(app, "file", &e, "name", "a/b", "dir_path", fdir, NULL), &e, QERR_PROTOCOL,
                  "Pool name must be in safe set: ");
        CHECK_ERR(add_pool(app, "file", &e, "name", "x", "dir_path", fdir, "color", "red", NULL), &e, QERR_PROTOCOL,
                  "Unexpected driver options found");
        CHECK_ERR(add_pool(app, "file", &e, "name", "x", NULL), &e, QERR_QUBES_EXCEPTION,
                  "missing required driver options: dir_path");
        CHECK_ERR(add_pool(app, "file", &e, "name", "x", "dir_path", fdir, "revisions_to_keep", "2", NULL), &e,
                  QERR_NOT_IMPLEMENTED, "FilePool supports maximum 1 volume revision to keep");
        CHECK_ERR(add_pool(app, "file", &e, "name", "varlibqubes", "dir_path", fdir, NULL), &e, QERR_POOL_IN_USE,
                  "Storage pool is in use: 'varlibqubes'");
        CHECK(add_pool(app, "file", &e, "name", "fp", "dir_path", fdir, NULL) == 0);

        /* file-reflink: refused where the file system cannot reflink, unless setup_check=False */
        int supported = reflink_supported(tmp);
        r = add_pool(app, "file-reflink", &e, "name", "checked", "dir_path", rdir2, NULL);
        if (supported > 0)
                CHECK(r == 0);
        else {
                CHECK_ERR(r, &e, QERR_STORAGE_POOL, "The filesystem for '");
                CHECK(access(rdir2, F_OK) < 0); /* the directory it made is gone again */
        }
        CHECK(add_pool(app, "file-reflink", &e, "name", "rp", "dir_path", rdir, "setup_check", "False",
                       "revisions_to_keep", "2", NULL) == 0);
        fprintf(stderr, "reflink support in %s: %s\n", tmp, supported > 0 ? "yes" : "no (copy fallback tested)");

        info = storage_pool_info(app, app_find_pool(app, "rp"));
        CHECK(info && startswith(info, "dir_path="));
        CHECK(info &&
              strstr(info, "\ndriver=file-reflink\nephemeral_volatile=False\nname=rp\nrevisions_to_keep=2\nsize="));
        CHECK(info && strstr(info, "\nincluded_in=varlibqubes\n"));
        info = mfree(info);

        /* a StandaloneVM in the file pool: volumes on disk with their sizes */
        CreateParams cp = { .klass = QUBES_CLASS_STANDALONEVM, .name = "sa", .label = "red", .pool = "fp" };
        r = storage_create_domain(app, &cp, &d, &e);
        CHECK(r == 0);
        if (r < 0) {
                qerror_done(&e);
                return;
        }
        CHECK(asprintf(&p, "%s/appvms/sa/private.img", fdir) > 0 && file_size_is(p, 2147483648));
        p = mfree(p);
        CHECK(asprintf(&p, "%s/appvms/sa/root.img", fdir) > 0 && file_size_is(p, 10737418240));
        p = mfree(p);

        StorageVolume v = {};
        CHECK(storage_volume_get(app, d, "private", &v, &e) == 0);
        info = storage_volume_info(&v);
        _cleanup_free_ char *want = NULL;
        CHECK(asprintf(&want,
                       "pool=fp\nvid=appvms/sa/private\nsize=2147483648\nusage=0\nrw=True\nsource=\n"
                       "path=%s/appvms/sa/private.img\nsave_on_stop=True\nsnap_on_start=False\nrevisions_to_keep=1\n"
                       "ephemeral=False\nis_outdated=False\n",
                       fdir) > 0);
        CHECK(info && streq(info, want));
        if (info && !streq(info, want))
                fprintf(stderr, "Info:\n%s\nwant:\n%s\n", info, want);
        info = mfree(info);
        storage_volume_done(&v);

        CHECK_ERR(storage_volume_get(app, d, "nope", &v, &e), &e, QERR_VOLUME_NOT_FOUND, "No such volume of sa: nope");
        CHECK_ERR(storage_volume_resize(app, d, "private", "1024", &e), &e, QERR_STORAGE_POOL,
                  "For your own safety, shrinking of appvms/sa/private is disabled");
        CHECK(storage_volume_resize(app, d, "private", "3221225472", &e) == 0);
        CHECK(asprintf(&p, "%s/appvms/sa/private.img", fdir) > 0 && file_size_is(p, 3221225472));
        p = mfree(p);
        CHECK_ERR(storage_volume_set_revisions_to_keep(app, d, "private", "2", &e), &e, QERR_NOT_IMPLEMENTED,
                  "FileVolume supports maximum 1");
        CHECK_ERR(storage_volume_set_rw(app, d, "private", "maybe", &e), &e, QERR_PROTOCOL,
                  "Payload is not boolean ASCII");
        CHECK_ERR(storage_volume_set_ephemeral(app, d, "private", "True", &e), &e, QERR_VALUE,
                  "Only a volatile read-write volume can be ephemeral");
        CHECK(storage_volume_set_ephemeral(app, d, "volatile", "True", &e) == 0);

        /* the pool is in use while the qube has volumes there */
        CHECK_ERR(storage_pool_remove(app, "fp", &e), &e, QERR_POOL_IN_USE, "Storage pool is in use: 'fp'");

        /* import 4 MiB into a file-reflink volume, twice: the first becomes revision 1 */
        cp = (CreateParams){ .klass = QUBES_CLASS_STANDALONEVM, .name = "sb", .label = "red", .pool = "rp" };
        CHECK(storage_create_domain(app, &cp, &d2, &e) == 0);
        CHECK(asprintf(&src, "%s/src1", tmp) > 0 && write_random(src, 4 << 20) == 0);
        CHECK(asprintf(&src2, "%s/src2", tmp) > 0 && write_random(src2, 4 << 20) == 0);
        CHECK(import_file(app, d2, "private", src, 4 << 20, &e) == 0);
        CHECK(asprintf(&p, "%s/appvms/sb/private.img", rdir) > 0 && same_content(p, src));
        CHECK(import_file(app, d2, "private", src2, 4 << 20, &e) == 0);
        CHECK(same_content(p, src2));
        /* a short import fails and leaves the volume as it was */
        CHECK_ERR(import_file(app, d2, "private", src, 5 << 20, &e), &e, QERR_QUBES_EXCEPTION,
                  "Data import failed: not enough data");
        CHECK(same_content(p, src2));
        _cleanup_free_ char *imp = NULL;
        CHECK(asprintf(&imp, "%s/appvms/sb/private-import.img", rdir) > 0 && access(imp, F_OK) < 0);

        CHECK(storage_volume_get(app, d2, "private", &v, &e) == 0);
        char **revs = NULL;
        CHECK(storage_volume_list_revisions(&v, &revs) == 0);
        CHECK(strv_length(revs) == 2 && streq(revs[0], "1") && streq(revs[1], "2"));
        strv_free(revs);
        CHECK_ERR(v.driver->revert(&v, "7", &e), &e, QERR_VOLUME_REVISION_NOT_FOUND, "Revision not found: 7");
        CHECK(v.driver->revert(&v, "2", &e) == 0); /* revision 2 holds src (the state before the 2nd import) */
        CHECK(same_content(p, src));
        /* start/stop: a running copy, then a commit that keeps at most revisions_to_keep */
        CHECK(storage_volumes_start(&v, 1, &e) == 0);
        _cleanup_free_ char *dirty = NULL;
        CHECK(asprintf(&dirty, "%s/appvms/sb/private-dirty.img", rdir) > 0 && same_content(dirty, src));
        CHECK(storage_volumes_stop(&v, 1, &e) == 0);
        CHECK(access(dirty, F_OK) < 0 && same_content(p, src));
        CHECK(storage_volume_list_revisions(&v, &revs) == 0 && strv_length(revs) == 2);
        strv_free(revs);
        storage_volume_done(&v);
        p = mfree(p);

        /* symlinks under the pool are never followed */
        CHECK(asprintf(&outside, "%s/outside", tmp) > 0 && mkdir(outside, 0755) == 0);
        CHECK(asprintf(&link, "%s/appvms/evil", fdir) > 0 && symlink(outside, link) == 0);
        CHECK(vol_create_sparse(fdir, "appvms/evil/private", ".img", 4096) == -ELOOP);
        CHECK(asprintf(&p, "%s/private.img", outside) > 0 && access(p, F_OK) < 0);
        p = mfree(p);
        CHECK(vol_create_sparse(fdir, "../escape", ".img", 4096) == -EINVAL);
        CHECK(vol_unlink(fdir, "/etc/passwd", "") == -EINVAL);

        /* the qube's removal takes its data along */
        CHECK(storage_remove_domain(app, d, &e) == 0);
        CHECK(asprintf(&p, "%s/appvms/sa/private.img", fdir) > 0 && access(p, F_OK) < 0);
        p = mfree(p);
        CHECK(storage_remove_domain(app, d2, &e) == 0);
        CHECK(asprintf(&p, "%s/appvms/sb", rdir) > 0 && access(p, F_OK) < 0);
        CHECK(storage_pool_remove(app, "fp", &e) == 0 && !app_find_pool(app, "fp"));
        CHECK_ERR(storage_pool_remove(app, "fp", &e), &e, QERR_POOL_NOT_FOUND, "No such storage pool: fp");
        CHECK_ERR(storage_pool_remove(app, "varlibqubes", &e), &e, QERR_POOL_IN_USE, "Storage pool is in use");
}

int main(void) {
        char tmpl[] = "/tmp/test-storage-XXXXXX";
        _cleanup_free_ char *cmd = NULL;

        if (!mkdtemp(tmpl)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }
        test_validation();
        test_pools_and_volumes(tmpl);
        if (asprintf(&cmd, "rm -rf '%s'", tmpl) > 0 && !getenv("QUBES_TEST_KEEP"))
                (void) !system(cmd);
        if (failures) {
                fprintf(stderr, "%d check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
