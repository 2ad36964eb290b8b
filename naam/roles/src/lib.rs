//! NAAM role processes (host, emulated NIC, client, CPU hog), eSwitch, and the lean naam-role binary
