package daemon

import (
	"time"

	"deskd/mail"
)

// observeDecision, observeSend and observeSource are the points where the
// loops report to the metrics and the health check.

func (d *Daemon) observeDecision(rep Report, took time.Duration) {}

func (d *Daemon) observeSend(r SendReport) {}

func (d *Daemon) observeSource(st mail.SourceStatus) {}
