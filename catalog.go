package smp

import "context"

// CatalogStore reads the catalogue: cities, services and technicians.
type CatalogStore interface {
	// FindCities returns every city, by code. No codes.
	FindCities(ctx context.Context) ([]*City, error)
	// FindServices returns every service, by code. No codes.
	FindServices(ctx context.Context) ([]*Service, error)
	// FindTechnicianByID returns a technician, with the order they hold,
	// as last committed; ENOTFOUND if there is none with id.
	FindTechnicianByID(ctx context.Context, id string) (*Technician, error)
	// FindTechnicians lists a city's technicians by id ("" for every
	// city; empty for an unknown city). No codes.
	FindTechnicians(ctx context.Context, city string) ([]*Technician, error)
}

// CatalogWriter creates and updates the catalogue (seeding and setup).
// Each call creates the record or replaces the one with the same key.
type CatalogWriter interface {
	// UpsertCity creates or updates a city by code. No codes.
	UpsertCity(ctx context.Context, c *City) error
	// UpsertService creates or updates a service by code. No codes.
	UpsertService(ctx context.Context, s *Service) error
	// UpsertPartner creates or updates a partner by id. No codes.
	UpsertPartner(ctx context.Context, p *Partner) error
	// UpsertTechnician creates or updates a technician by id, leaving the
	// order they hold unchanged. Their partner and city must exist. No codes.
	UpsertTechnician(ctx context.Context, t *Technician) error
	// UpsertCustomer creates or updates a customer by id. No codes.
	UpsertCustomer(ctx context.Context, c *Customer) error
}

// CatalogTx is the catalogue writes of a transaction: a technician holds
// at most one order, decided here rather than by any in-process lock.
type CatalogTx interface {
	// ClaimTechnician marks the technician as holding orderID; ECONFLICT
	// if they already hold an order (orderID included), ENOTFOUND if
	// unknown.
	ClaimTechnician(ctx context.Context, technicianID, orderID string) error
	// ReleaseTechnician clears the technician's active order if it is
	// orderID, and does nothing otherwise (unknown technician included).
	// No codes.
	ReleaseTechnician(ctx context.Context, technicianID, orderID string) error
}
