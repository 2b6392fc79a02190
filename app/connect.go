package app

import (
	"context"

	"smp/auth"
	"smp/connect"
	"smp/connectapi"
	"smp/internal/startstop"
)

// initConnect builds the Kafka Connect worker (offsets in the store) and
// its REST API on ConnectAddr, behind the admin tokens the platform's API
// takes. The worker starts before its API and stops after it.
func (a *App) initConnect(ctx context.Context) (startstop.Service, error) {
	var err error
	a.Connect, err = connect.New(connect.Config{WorkerID: a.Cfg.ConnectAddr, Plugins: map[string]connect.Plugin{}, Offsets: a.Store, Logger: a.Log})
	if err != nil {
		return nil, err
	}
	a.ConnectAPI, err = connectapi.New(connectapi.Config{Addr: a.Cfg.ConnectAddr, Worker: a.Connect,
		Auth: auth.NewAuthenticator(a.Store, a.Cfg.AdminToken), Logger: a.Log})
	if err != nil {
		return nil, err
	}
	return sequence{a.Connect, a.ConnectAPI}, nil
}
