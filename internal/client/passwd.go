package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/kdf"
)

// ChangePassword replaces the password. Every secret derived from it
// rotates: the account's OPRF key and login key on the server, this device's
// OPRF key, and the keys of the keystore and the database, under fresh salts.
// The new files are staged and prepared before the server switches, and put
// in place after, so an interruption at any point leaves a profile that one
// of the two passwords opens. Other devices keep their certificates and keep
// opening with the password they were opened with until they change it too.
func (p *Profile) ChangePassword(ctx context.Context, oldPassword, newPassword []byte, o *Options) error {
	if len(newPassword) < 8 {
		return ErrPasswordFormat
	}
	var me api.Me
	if err := p.c.call(ctx, "GET", api.PathMe, nil, &me); err != nil {
		return err
	}
	// As at login: parameters from the server must not make the password
	// cheap to guess from what this exchange sends.
	if err := me.KDF.AtLeast(o.minKDF()); err != nil {
		return fmt.Errorf("%w: %w", ErrWeakKDF, err)
	}
	o.progress("deriving keys from the old and new passwords")
	old, err := deriveSecrets(oldPassword, me.KDF, me.Salts.Scrypt, me.Salts.Auth, nil, nil)
	if err != nil {
		return err
	}
	params := o.params()
	salts := kdf.NewSalts()
	nu, err := deriveSecrets(newPassword, params, salts.Scrypt, salts.Auth, salts.Keystore, salts.Database)
	if err != nil {
		return err
	}
	oldBl, err := kdf.Blind(old.auth)
	if err != nil {
		return err
	}
	newA, err := kdf.Blind(nu.auth)
	if err != nil {
		return err
	}
	newD, err := kdf.Blind(nu.keystore)
	if err != nil {
		return err
	}
	var ch api.LoginChallenge
	if err := p.c.call(ctx, "POST", api.PathPasswdBegin, api.PasswdBegin{OldAccountBlind: oldBl.Message(), NewAccountBlind: newA.Message(), NewDeviceBlind: newD.Message()}, &ch); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	oldAuth, err := finalKey(oldBl, ch.AccountEval, old.auth, kdf.ServerAuth)
	if err != nil {
		return err
	}
	newAuth, err := finalKey(newA, ch.NewAccountEval, nu.auth, kdf.ServerAuth)
	if err != nil {
		return err
	}
	y, err := newD.Finalize(ch.NewDeviceEval)
	if err != nil {
		return err
	}
	ksKey, _ := kdf.Final(y, nu.keystore, kdf.Keystore)
	dbKey, _ := kdf.Final(y, nu.database, kdf.Database)

	// Stage everything under the new keys.
	discardStaged(p.Dir)
	oldKS := p.ksKey
	p.ksKey = ksKey
	err = p.writeKeystore(stagedSuffix)
	p.ksKey = oldKS
	if err != nil {
		discardStaged(p.Dir)
		return err
	}
	if err := p.db.exportTo(ctx, filepath.Join(p.Dir, DBFile+stagedSuffix), dbKey); err != nil {
		discardStaged(p.Dir)
		return err
	}
	meta := *p.Meta
	meta.KDF = params
	meta.Salts = kdf.Salts{Scrypt: salts.Scrypt, Keystore: salts.Keystore, Database: salts.Database}
	meta.Check = checkValue(ksKey)
	if err := writeFile(filepath.Join(p.Dir, MetaFile+stagedSuffix), meta.encode()); err != nil {
		discardStaged(p.Dir)
		return err
	}

	sig := ed25519.Sign(authKey(oldAuth), api.PasswdMessage(ch.Session, ch.Challenge, p.Device.Name))
	pub := authKey(newAuth).Public().(ed25519.PublicKey)
	err = p.c.call(ctx, "POST", api.PathPasswdFinish, api.PasswdFinish{Session: ch.Session, Signature: sig, AuthPub: pub, KDF: params,
		Salts: kdf.Salts{Scrypt: salts.Scrypt, Auth: salts.Auth}}, nil)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			// A definite refusal: the server kept the old material.
			discardStaged(p.Dir)
			return fmt.Errorf("change password: %w", err)
		}
		// The answer was lost: the server may have switched. Keep the staged
		// files; the next open uses whichever set the password opens.
		return fmt.Errorf("change password interrupted (%w); open the profile again with the new password, or the old one if that fails", err)
	}
	// The server has switched: the staged files are now the only ones the
	// new password opens. Close the database before replacing its file.
	if err := p.db.close(); err != nil {
		return err
	}
	p.db = nil
	if err := commitStaged(p.Dir); err != nil {
		return err
	}
	p.Meta, p.ksKey = &meta, ksKey
	if p.db, err = openLocalDB(ctx, filepath.Join(p.Dir, DBFile), dbKey); err != nil {
		return err
	}
	return nil
}
