package broker

import "github.com/shoji-rbi/shoji/broker/auth"

// The names the end-to-end tests of the banner and the pledge use
// (api_test.go), from before the pledge rule moved to broker/auth.
const (
	defaultPledge = auth.DefaultPledge
	settingPledge = auth.SettingPledge
)

var pledgeVersion = auth.PledgeVersion
