package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenSocket creates the control socket at path with the given mode,
// which must be 0600 (the gateway's user only) or 0660 (also its group).
// The parent folder is created 0700 when missing; an existing parent that
// others can write to is rejected. A stale socket file left by a stopped
// gateway is replaced; a live one is an error.
func ListenSocket(path string, mode fs.FileMode) (net.Listener, error) {
	if mode != 0o600 && mode != 0o660 {
		return nil, fmt.Errorf("control: socket mode %#o is not allowed; use 0600 or 0660", mode)
	}
	if err := ensurePrivateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	// The umask keeps the socket private between bind and chmod.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control: listen on socket %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: set mode of socket %s: %w", path, err)
	}
	return ln, nil
}

func ensurePrivateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("control: create socket folder %s: %w", dir, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: socket folder %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control: socket folder %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("control: socket folder %s has mode %#o, writable by others; "+
			"chmod it to 0700", dir, fi.Mode().Perm())
	}
	return nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control: socket %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("control: %s exists and is not a socket; move it away", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("control: socket %s is in use by a running gateway; stop it first", path)
	}
	return os.Remove(path)
}

// peerCred is the identity of the process at the other end of a Unix
// socket, as the kernel reports it.
type peerCred struct {
	PID uint32
	UID uint32
	GID uint32
}

type peerCredKey struct{}

// connContext records the peer credentials of Unix socket connections.
// A connection whose credentials cannot be read carries an error instead,
// and every request on it is rejected.
func connContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	cred, err := readPeerCred(uc)
	if err != nil {
		return context.WithValue(ctx, peerCredKey{}, err)
	}
	return context.WithValue(ctx, peerCredKey{}, cred)
}

func readPeerCred(c *net.UnixConn) (peerCred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return peerCred{}, err
	}
	var uc *unix.Ucred
	var gerr error
	err = raw.Control(func(fd uintptr) {
		uc, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = gerr
	}
	if err != nil {
		return peerCred{}, fmt.Errorf("read peer credentials: %w", err)
	}
	return peerCred{PID: uint32(uc.Pid), UID: uc.Uid, GID: uc.Gid}, nil
}

// localSponsor turns peer credentials into a sponsor: issuer "local", the
// user name as subject and the user's group names as groups.
func localSponsor(cred peerCred) (name string, groups []string, err error) {
	uid := strconv.FormatUint(uint64(cred.UID), 10)
	u, err := user.LookupId(uid)
	if err != nil {
		return "", nil, fmt.Errorf("look up user id %s: %w", uid, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{strconv.FormatUint(uint64(cred.GID), 10)}
	}
	for _, gid := range gids {
		if g, err := user.LookupGroupId(gid); err == nil {
			groups = append(groups, g.Name)
		}
	}
	return u.Username, groups, nil
}

func currentUID() uint32 { return uint32(os.Getuid()) }
