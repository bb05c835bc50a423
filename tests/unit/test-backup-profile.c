/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Backup profiles (spec/backup.md §2): every error of the spec with upstream's class and text,
 * the YAML typing PyYAML's safe loader gives (null, booleans, numbers, quoted strings), include
 * and exclude, compression, passphrases, and the selection rules. */
#include <fcntl.h>
#include <sys/stat.h>

#include "backup/profile.h"
#include "util/fileio.h"
#include "util/strv.h"

static int failures;

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        failures++;                                                              \
                }                                                                                \
        } while (0)

static void check_error(int line, const char *text, QubesErrorCode code, const char *message) {
        BackupProfile p = {};
        QError e = {};
        int r = backup_profile_parse("prof", text, strlen(text), &p, &e);
        _cleanup_free_ char *m = qerror_message(&e);
        bool ok = r < 0 && e.code == code &&
                  (message[strlen(message) - 1] == '*' ? m && strncmp(m, message, strlen(message) - 1) == 0
                                                       : m && streq(m, message));
        if (!ok) {
                fprintf(stderr, "%s:%d: %s\n  got r=%d %s \"%s\"\n  want %s \"%s\"\n", __FILE__, line, text, r,
                        qubes_error_class_name(e.code), strempty(m), qubes_error_class_name(code), message);
                failures++;
        }
        qerror_done(&e);
        backup_profile_done(&p);
}
#define ERR(text, code, message) check_error(__LINE__, text, code, message)

static BackupProfile parse_ok(int line, const char *text) {
        BackupProfile p = {};
        QError e = {};
        if (backup_profile_parse("prof", text, strlen(text), &p, &e) < 0) {
                _cleanup_free_ char *m = qerror_message(&e);
                fprintf(stderr, "%s:%d: refused: %s\n  %s\n", __FILE__, line, text, strempty(m));
                failures++;
        }
        qerror_done(&e);
        return p;
}
#define OK(text) parse_ok(__LINE__, text)

#define BASE "destination_vm: dom0\ndestination_path: /var/backups\n"

static void test_errors(void) {
        /* the three required keys, in upstream's order of reading */
        ERR("destination_path: /x\ninclude: null\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - missing 'destination_vm'");
        ERR("destination_vm: dom0\ninclude: null\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - missing 'destination_path'");
        ERR(BASE, QERR_QUBES_EXCEPTION, "Invalid backup profile - missing 'include'");
        ERR("include: null\n", QERR_QUBES_EXCEPTION, "Invalid backup profile - missing 'destination_vm'");
        /* a destination that cannot name a qube */
        ERR("destination_vm: [a]\ndestination_path: /x\ninclude: null\n", QERR_QUBES_EXCEPTION,
            "Invalid destination_vm specified in backup profile");
        ERR("destination_vm: 7\ndestination_path: /x\ninclude: null\n", QERR_QUBES_EXCEPTION,
            "Invalid destination_vm specified in backup profile");
        /* ours (upstream crashes or misreads): documented in docs/compatibility.md */
        ERR("", QERR_QUBES_EXCEPTION, "Invalid backup profile - the file must hold a mapping of keys to values");
        ERR("- a\n- b\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - the file must hold a mapping of keys to values");
        ERR(BASE "include: [a\n", QERR_QUBES_EXCEPTION, "Invalid backup profile - not valid YAML*");
        ERR(BASE "include: work\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - 'include' must be a list of qube names, @tag:<tag> or @type:<class>");
        ERR(BASE "include: null\nexclude: {a: b}\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - 'exclude' must be a list of qube names, @tag:<tag> or @type:<class>");
        ERR(BASE "include: [[a]]\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - 'include' must be a list of qube names, @tag:<tag> or @type:<class>");
        ERR("destination_vm: dom0\ndestination_path: 5\ninclude: null\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - 'destination_path' must be a string");
        ERR(BASE "include: null\ncompression: 'x y'\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - compression must be true, false or the name of a filter program (letters, "
            "digits and '-'), not 'x y'");
        ERR(BASE "include: null\ncompression: [gzip]\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - compression must be true, false or the name of a filter program");
        ERR(BASE "include: null\npassphrase_text: [x]\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - 'passphrase_text' must be a string");
        ERR(BASE "include: null\nscrypt_logn: 30\n", QERR_QUBES_EXCEPTION,
            "Invalid backup profile - scrypt_logn must be a whole number from 10 to 22");
}

static void test_values(void) {
        BackupProfile p = OK(BASE "include: null\n");
        CHECK(streq(p.destination_vm, "dom0") && streq(p.destination_path, "/var/backups"));
        CHECK(p.include_default && !p.include);
        CHECK(p.exclude && !p.exclude[0]);
        CHECK(p.compressed && streq(p.compression_filter, "gzip"));
        CHECK(!p.has_passphrase_text && !p.passphrase_vm);
        QError e = {};
        CHECK(backup_profile_check_passphrase(&p, &e) < 0);
        _cleanup_free_ char *m = qerror_message(&e);
        CHECK(m && streq(m, "Invalid backup profile - you need to specify passphrase_text or passphrase_vm"));
        qerror_done(&e);
        backup_profile_done(&p);

        /* '$' is the old spelling of '@'; exclude: with no value is an empty list */
        p = OK(BASE "include: [work, '$tag:t', '$type:AppVM']\nexclude:\n");
        CHECK(strv_length(p.include) == 3 && streq(p.include[1], "@tag:t") && streq(p.include[2], "@type:AppVM"));
        CHECK(p.exclude && !p.exclude[0]);
        backup_profile_done(&p);

        /* compression: booleans in YAML 1.1's spellings, a filter name, an empty string */
        static const struct {
                const char *value;
                bool compressed;
                const char *filter;
        } comp[] = {
                { "false", false, "gzip" },   { "False", false, "gzip" }, { "no", false, "gzip" },
                { "off", false, "gzip" },     { "true", true, "gzip" },   { "yes", true, "gzip" },
                { "On", true, "gzip" },       { "xz", true, "xz" },       { "zstd", true, "zstd" },
                { "'false'", true, "false" }, { "''", false, "gzip" },    { "0", false, "gzip" },
                { "1", true, "gzip" },        { "null", false, "gzip" },
        };
        for (size_t i = 0; i < ELEMENTSOF(comp); i++) {
                _cleanup_free_ char *text = NULL;
                CHECK(asprintf(&text, BASE "include: null\ncompression: %s\n", comp[i].value) > 0);
                p = OK(text);
                if (p.compressed != comp[i].compressed || !streq_ptr(p.compression_filter, comp[i].filter)) {
                        fprintf(stderr, "compression: %s → %d %s\n", comp[i].value, p.compressed,
                                strempty(p.compression_filter));
                        failures++;
                }
                backup_profile_done(&p);
        }

        /* passphrases: the text as written (numbers too), UTF-8; text wins over a qube */
        p = OK(BASE "include: null\npassphrase_text: 0x10\npassphrase_vm: vault\n");
        CHECK(p.has_passphrase_text && streq(p.passphrase_text, "0x10") && p.passphrase_len == 4);
        CHECK(streq(p.passphrase_vm, "vault"));
        backup_profile_done(&p);
        p = OK(BASE "include: null\npassphrase_text: \"sécret ✓\"\n");
        CHECK(streq(p.passphrase_text, "sécret ✓"));
        backup_profile_done(&p);
        /* the last of duplicate keys wins, as PyYAML's; unknown keys are ignored */
        p = OK(BASE "include: null\ndestination_vm: backupvm\nsomething_else: 1\n");
        CHECK(streq(p.destination_vm, "backupvm"));
        backup_profile_done(&p);
        /* anchors and aliases */
        p = OK("destination_vm: &d dom0\ndestination_path: *d\ninclude: [*d]\n");
        CHECK(streq(p.destination_path, "dom0") && streq(p.include[0], "dom0"));
        backup_profile_done(&p);
        /* what qvm-backup writes (yaml.safe_dump, keys sorted) */
        p = OK("compression: true\ndestination_path: /home/user/backups\ndestination_vm: dom0\nexclude:\n- sys-net\n"
               "include:\n- work\n- personal\npassphrase_text: pass\n");
        CHECK(strv_length(p.include) == 2 && streq(p.exclude[0], "sys-net") && streq(p.passphrase_text, "pass"));
        backup_profile_done(&p);
        p = OK(BASE "include: null\nscrypt_logn: 16\n");
        CHECK(p.scrypt_log_n == 16);
        backup_profile_done(&p);
}

static void test_passphrase_from_qube(void) {
        QError e = {};
        char *pass = NULL;
        size_t len = 0;
        CHECK(backup_passphrase_from_service("  secret \n", 10, &pass, &len, &e) == 0);
        CHECK(pass && streq(pass, "secret") && len == 6);
        free(pass);
        CHECK(backup_passphrase_from_service("a\nb\n", 4, &pass, &len, &e) < 0);
        _cleanup_free_ char *m = qerror_message(&e);
        CHECK(e.code == QERR_PROTOCOL && m && streq(m, "Passphrase must not contain newline character"));
        qerror_done(&e);
}

static bool tag_t(const void *q, const char *tag) {
        return streq(tag, "t");
}

static void test_matching(void) {
        CHECK(backup_entry_matches("work", "work", "AppVM", tag_t, NULL));
        CHECK(!backup_entry_matches("work", "work2", "AppVM", tag_t, NULL));
        CHECK(backup_entry_matches("@tag:t", "x", "AppVM", tag_t, NULL));
        CHECK(!backup_entry_matches("@tag:u", "x", "AppVM", tag_t, NULL));
        CHECK(backup_entry_matches("@type:TemplateVM", "x", "TemplateVM", tag_t, NULL));
        CHECK(!backup_entry_matches("@type:templatevm", "x", "TemplateVM", tag_t, NULL));
}

static void test_load(void) {
        char dir[] = "/tmp/test-backup-profile.XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *sub = NULL, *path = NULL;
        CHECK(asprintf(&sub, "%s/backup", dir) > 0 && mkdir(sub, 0700) == 0);
        BackupProfile p = {};
        QError e = {};
        CHECK(backup_profile_load(dir, "absent", &p, &e) < 0);
        _cleanup_free_ char *m = qerror_message(&e);
        CHECK(e.code == QERR_BACKUP_PROFILE_NOT_FOUND && m && streq(m, "Backup profile does not exist: absent"));
        qerror_done(&e);
        path = backup_profile_path(dir, "here");
        CHECK(write_file_atomic(path, BASE "include: null\n", strlen(BASE "include: null\n"), 0600) == 0);
        CHECK(backup_profile_load(dir, "here", &p, &e) == 0 && streq(p.name, "here"));
        backup_profile_done(&p);
        unlink(path);
        rmdir(sub);
        rmdir(dir);
}

/* The example shipped in data/ is a valid profile. */
static void test_example(void) {
        const char *src = getenv("QUBES_SOURCE_DIR");
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        if (!src)
                return;
        CHECK(asprintf(&path, "%s/data/backup-profile.example.conf", src) > 0);
        CHECK(read_file(path, &text, &len) == 0);
        BackupProfile p = OK(text ?: "");
        CHECK(streq_ptr(p.destination_vm, "dom0") && strv_length(p.include) == 3 &&
              streq_ptr(p.passphrase_vm, "vault"));
        CHECK(p.compressed && streq_ptr(p.compression_filter, "gzip"));
        backup_profile_done(&p);
}

int main(void) {
        test_errors();
        test_values();
        test_passphrase_from_qube();
        test_matching();
        test_load();
        test_example();
        if (failures) {
                fprintf(stderr, "%d checks failed\n", failures);
                return 1;
        }
        printf("all checks passed\n");
        return 0;
}
