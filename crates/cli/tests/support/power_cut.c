/*
 * The power-cut recorder, loaded into `tally serve` with LD_PRELOAD by the power-loss test
 * (`crates/cli/tests/power_loss.rs`; the test compiles this file with the system C
 * compiler, and `support/power_cut.rs` reads what it records). It is C because the
 * workspace forbids `unsafe` Rust, and interposing libc calls needs it.
 *
 * For every file under the directory named by POWER_CUT_DIRECTORY it appends to the undo
 * journal named by POWER_CUT_JOURNAL, in the order the calls happen:
 *   - before each write or truncation, an undo record: the file, the offset, the file's
 *     size before and the bytes about to be overwritten (or cut off);
 *   - after each successful fsync or fdatasync, a sync record: the file, and the number of
 *     journal records written when the sync began (only those are surely on disk);
 *   - before each unlink, a deletion record (a later file of that name is a new file);
 *   - before a writev to such a file, an "unsupported" record: the harness cannot undo it,
 *     so the test fails instead of keeping a write a power cut might have lost.
 * A power cut is then: per file, undo every write recorded after its last sync, newest
 * first. The journal is written with the real write(2), so a SIGKILL leaves it whole up
 * to the call that was running (a record is complete before its write begins).
 *
 * The calls are those SQLite's unix VFS makes on Linux: pwrite64 (seekAndWrite), fsync
 * (full_fsync: SQLite maps fdatasync to fsync unless built with HAVE_FDATASYNC),
 * ftruncate64 (robust_ftruncate), unlink (a log deleted when the last connection closes),
 * write (only for the shared-memory index). pwrite, ftruncate and fdatasync are wrapped
 * too, for a SQLite built otherwise. The "-shm" index is not followed: SQLite never syncs
 * it and rebuilds it from the log at the first open after a crash; the test deletes it.
 * Memory-mapped writes are not seen; SQLite maps no database file unless mmap_size is set,
 * and Tally does not set it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { UNDO = 'W', SYNCED = 'S', DELETED = 'D', UNSUPPORTED = 'U' };

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);

/* The followed directory with a trailing slash; empty when the recorder is off. */
static char followed[PATH_MAX + 1];
static size_t followed_length;
static int journal = -1;
/* Records appended so far: the sequence number of the next one. */
static uint64_t records;
/* Held from an undo record to the end of its write, so that the journal's order is the
 * order of the writes. */
static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;

static void *real(const char *name) {
    void *function = dlsym(RTLD_NEXT, name);
    if (function == NULL) {
        fprintf(stderr, "power_cut: %s not found\n", name);
        abort();
    }
    return function;
}

static void resolve(void) {
    real_write = real("write");
    real_writev = real("writev");
    real_pwrite = real("pwrite");
    real_pwrite64 = real("pwrite64");
    real_ftruncate = real("ftruncate");
    real_ftruncate64 = real("ftruncate64");
    real_fsync = real("fsync");
    real_fdatasync = real("fdatasync");
    real_unlink = real("unlink");
    real_unlinkat = real("unlinkat");
}

__attribute__((constructor)) static void start(void) {
    resolve();
    const char *directory = getenv("POWER_CUT_DIRECTORY");
    const char *journal_path = getenv("POWER_CUT_JOURNAL");
    if (directory == NULL || journal_path == NULL) {
        return;
    }
    int length = snprintf(followed, sizeof followed, "%s/", directory);
    if (length <= 1 || (size_t)length >= sizeof followed) {
        fprintf(stderr, "power_cut: POWER_CUT_DIRECTORY is empty or too long\n");
        abort();
    }
    journal = open(journal_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (journal < 0) {
        perror("power_cut: cannot open POWER_CUT_JOURNAL");
        abort();
    }
    followed_length = (size_t)length;
}

/* Whether `path` is a followed file. */
static int is_followed(const char *path) {
    size_t length = strlen(path);
    if (journal < 0 || length <= followed_length) {
        return 0;
    }
    if (strncmp(path, followed, followed_length) != 0) {
        return 0;
    }
    return !(length >= 4 && strcmp(path + length - 4, "-shm") == 0);
}

/* Whether the file open as `fd` is followed; its path in `path`. */
static int follows(int fd, char *path) {
    if (journal < 0) {
        return 0;
    }
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, PATH_MAX);
    if (length <= 0 || length >= PATH_MAX) {
        return 0;
    }
    path[length] = '\0';
    return is_followed(path);
}

/* Appends `length` bytes to the journal; a journal that cannot be written stops the
 * process (a run whose writes went unrecorded would prove nothing). */
static void append(const unsigned char *bytes, size_t length) {
    while (length > 0) {
        ssize_t written = real_write(journal, bytes, length);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            perror("power_cut: cannot write the journal");
            abort();
        }
        bytes += written;
        length -= (size_t)written;
    }
    records += 1;
}

/* A record: kind, path length (u32), path, then `numbers` (u64 each), then `tail`. All
 * integers in the machine's byte order. Called with journal_lock held. */
static void append_record(char kind, const char *path, const uint64_t *numbers, size_t count,
                          const unsigned char *tail, size_t tail_length) {
    uint32_t path_length = (uint32_t)strlen(path);
    size_t length = 1 + sizeof path_length + path_length + count * sizeof(uint64_t) + tail_length;
    unsigned char *record = malloc(length);
    if (record == NULL) {
        abort();
    }
    unsigned char *at = record;
    *at++ = (unsigned char)kind;
    memcpy(at, &path_length, sizeof path_length);
    at += sizeof path_length;
    memcpy(at, path, path_length);
    at += path_length;
    memcpy(at, numbers, count * sizeof(uint64_t));
    at += count * sizeof(uint64_t);
    if (tail_length > 0) {
        memcpy(at, tail, tail_length);
    }
    append(record, length);
    free(record);
}

/* Records what a write of `length` bytes at `offset` (or a truncation to `offset`, with
 * `length` UINT64_MAX) of the file open as `fd` is about to change. Called with
 * journal_lock held. */
static void record_undo(int fd, const char *path, uint64_t offset, uint64_t length) {
    struct stat status;
    if (fstat(fd, &status) != 0) {
        perror("power_cut: fstat");
        abort();
    }
    uint64_t size_before = (uint64_t)status.st_size;
    uint64_t old_length = 0;
    if (offset < size_before) {
        old_length = size_before - offset < length ? size_before - offset : length;
    }
    unsigned char *old = old_length > 0 ? malloc(old_length) : NULL;
    if (old_length > 0 && old == NULL) {
        abort();
    }
    uint64_t read_so_far = 0;
    int reader = fd;
    while (read_so_far < old_length) {
        ssize_t got = pread(reader, old + read_so_far, old_length - read_so_far,
                            (off_t)(offset + read_so_far));
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 && errno == EBADF && reader == fd) {
            /* Opened for writing only: read through a descriptor of our own. */
            reader = open(path, O_RDONLY | O_CLOEXEC);
            if (reader >= 0) {
                continue;
            }
        }
        if (got <= 0) {
            perror("power_cut: cannot read the bytes a write overwrites");
            abort();
        }
        read_so_far += (uint64_t)got;
    }
    if (reader != fd) {
        close(reader);
    }
    uint64_t numbers[3] = {offset, size_before, old_length};
    append_record(UNDO, path, numbers, 3, old, old_length);
    free(old);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset) {
    char path[PATH_MAX];
    if (!follows(fd, path)) {
        return real_pwrite64(fd, buffer, count, offset);
    }
    pthread_mutex_lock(&journal_lock);
    record_undo(fd, path, (uint64_t)offset, (uint64_t)count);
    ssize_t written = real_pwrite64(fd, buffer, count, offset);
    int error = errno;
    pthread_mutex_unlock(&journal_lock);
    errno = error;
    return written;
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
    char path[PATH_MAX];
    if (!follows(fd, path)) {
        return real_pwrite(fd, buffer, count, offset);
    }
    pthread_mutex_lock(&journal_lock);
    record_undo(fd, path, (uint64_t)offset, (uint64_t)count);
    ssize_t written = real_pwrite(fd, buffer, count, offset);
    int error = errno;
    pthread_mutex_unlock(&journal_lock);
    errno = error;
    return written;
}

ssize_t write(int fd, const void *buffer, size_t count) {
    char path[PATH_MAX];
    if (real_write == NULL) {
        resolve();
    }
    if (!follows(fd, path)) {
        return real_write(fd, buffer, count);
    }
    pthread_mutex_lock(&journal_lock);
    off_t offset;
    if (fcntl(fd, F_GETFL) & O_APPEND) {
        struct stat status;
        offset = fstat(fd, &status) == 0 ? status.st_size : -1;
    } else {
        offset = lseek(fd, 0, SEEK_CUR);
    }
    if (offset < 0) {
        perror("power_cut: cannot find where a write goes");
        abort();
    }
    record_undo(fd, path, (uint64_t)offset, (uint64_t)count);
    ssize_t written = real_write(fd, buffer, count);
    int error = errno;
    pthread_mutex_unlock(&journal_lock);
    errno = error;
    return written;
}

ssize_t writev(int fd, const struct iovec *vector, int count) {
    char path[PATH_MAX];
    if (real_writev == NULL) {
        resolve();
    }
    if (follows(fd, path)) {
        pthread_mutex_lock(&journal_lock);
        append_record(UNSUPPORTED, path, NULL, 0, NULL, 0);
        pthread_mutex_unlock(&journal_lock);
    }
    return real_writev(fd, vector, count);
}

static int truncate_recorded(int fd, uint64_t length, int (*truncate_really)(int, off64_t)) {
    char path[PATH_MAX];
    if (!follows(fd, path)) {
        return truncate_really(fd, (off64_t)length);
    }
    pthread_mutex_lock(&journal_lock);
    record_undo(fd, path, length, UINT64_MAX);
    int result = truncate_really(fd, (off64_t)length);
    int error = errno;
    pthread_mutex_unlock(&journal_lock);
    errno = error;
    return result;
}

static int ftruncate_as_64(int fd, off64_t length) {
    return real_ftruncate(fd, (off_t)length);
}

int ftruncate64(int fd, off64_t length) {
    return truncate_recorded(fd, (uint64_t)length, real_ftruncate64);
}

int ftruncate(int fd, off_t length) {
    return truncate_recorded(fd, (uint64_t)length, ftruncate_as_64);
}

/* Only writes recorded before the sync began are surely covered by it. */
static int sync_recorded(int fd, int (*sync_really)(int)) {
    char path[PATH_MAX];
    if (!follows(fd, path)) {
        return sync_really(fd);
    }
    pthread_mutex_lock(&journal_lock);
    uint64_t durable_before = records;
    pthread_mutex_unlock(&journal_lock);
    int result = sync_really(fd);
    int error = errno;
    if (result == 0) {
        pthread_mutex_lock(&journal_lock);
        append_record(SYNCED, path, &durable_before, 1, NULL, 0);
        pthread_mutex_unlock(&journal_lock);
    }
    errno = error;
    return result;
}

int fsync(int fd) {
    return sync_recorded(fd, real_fsync);
}

int fdatasync(int fd) {
    return sync_recorded(fd, real_fdatasync);
}

/* Directory entries are not modelled (an unlink is taken as durable at once): the record
 * only tells the test that later writes to this name are to another file. `directory` is
 * the path `path` is relative to, if it is relative. */
static void record_deletion(const char *directory, const char *path) {
    char absolute[PATH_MAX];
    if (journal < 0) {
        return;
    }
    if (path[0] == '/') {
        snprintf(absolute, sizeof absolute, "%s", path);
    } else {
        snprintf(absolute, sizeof absolute, "%s/%s", directory, path);
    }
    if (is_followed(absolute)) {
        pthread_mutex_lock(&journal_lock);
        append_record(DELETED, absolute, NULL, 0, NULL, 0);
        pthread_mutex_unlock(&journal_lock);
    }
}

int unlink(const char *path) {
    char directory[PATH_MAX] = "";
    if (journal >= 0 && path[0] != '/' && getcwd(directory, sizeof directory) == NULL) {
        directory[0] = '\0';
    }
    record_deletion(directory, path);
    return real_unlink(path);
}

int unlinkat(int directory_fd, const char *path, int flags) {
    char directory[PATH_MAX] = "";
    if (journal >= 0 && path[0] != '/') {
        if (directory_fd == AT_FDCWD) {
            if (getcwd(directory, sizeof directory) == NULL) {
                directory[0] = '\0';
            }
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", directory_fd);
            ssize_t length = readlink(link, directory, PATH_MAX - 1);
            directory[length > 0 ? length : 0] = '\0';
        }
    }
    record_deletion(directory, path);
    return real_unlinkat(directory_fd, path, flags);
}
