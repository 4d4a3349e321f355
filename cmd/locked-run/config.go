package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/locked-run/locked-run/internal/stack"
	"github.com/locked-run/locked-run/lock"
)

// str returns the value of a string option, looking from the subcommand up
// to the application, so `locked-run -t T status` and `locked-run status
// -t T` both work. The first non-empty value wins.
func str(c *cli.Context, name string) string {
	for _, cc := range c.Lineage() {
		if cc.Command == nil && cc.App == nil {
			continue
		}
		if v := cc.String(name); v != "" {
			return v
		}
	}
	return ""
}

// boolean reports whether a boolean option is set at any level, or by its
// environment variable (see envBools).
func boolean(c *cli.Context, name string) bool {
	for _, cc := range c.Lineage() {
		if cc.Bool(name) {
			return true
		}
	}
	return envBool(name)
}

// newLogger builds the root logger from the output options. It always
// writes to stderr: stdout belongs to the child.
func newLogger(c *cli.Context) (hclog.Logger, error) {
	level := hclog.Info
	if s := str(c, flagLogLevel); s != "" {
		level = hclog.LevelFromString(s)
		if level == hclog.NoLevel {
			return nil, usagef("--log-level %q: use trace, debug, info, warn or error", s)
		}
	}
	if boolean(c, flagQuiet) {
		level = hclog.Error
		c.App.Metadata[metaQuiet] = true
	}
	format := str(c, flagLogFormat)
	if format != "text" && format != "json" && format != "" {
		return nil, usagef("--log-format %q: use text or json", format)
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "locked-run",
		Level:      level,
		Output:     c.App.ErrWriter,
		JSONFormat: format == "json",
		TimeFormat: "2006-01-02T15:04:05.000Z07:00",
	})
	if format == "json" {
		// The final error line must be JSON too, for log shippers.
		c.App.Metadata[metaJSONLogger] = logger
	}
	return logger, nil
}

// metaJSONLogger is the App.Metadata key holding the logger when logs are
// JSON, so the final error line is written as JSON too.
const metaJSONLogger = "json-logger"

// metaTable is the App.Metadata key holding the --table in use.
const metaTable = "table"

// backend says where the lock lives, from --table / --local.
type backend struct {
	table string
	local bool
}

func backendOf(c *cli.Context) (backend, error) {
	b := backend{table: str(c, flagTable), local: boolean(c, flagLocal)}
	// Remembered for the final error line, which names the table to create.
	c.App.Metadata[metaTable] = b.table
	switch {
	case b.table == "" && !b.local:
		return b, usagef("no lock backend: pass --table NAME (or LOCKED_RUN_TABLE) for a DynamoDB lock, or --local for a lock on this host only")
	case b.table != "" && b.local:
		return b, usagef("--table and --local both given: choose one")
	case b.table != "":
		if err := validateTableName(b.table); err != nil {
			return b, err
		}
	}
	return b, nil
}

// identity describes this process for the lock record.
func identity(command string) lock.Identity {
	host, _ := os.Hostname()
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return lock.Identity{Host: host, PID: os.Getpid(), User: name, Command: command}
}

// awsOptions are the command-line options that say which AWS
// configuration to load. They are read from the cli.Context before the
// load starts, so that the load can run beside the rest of the start-up
// without touching the context.
type awsOptions struct{ region, profile, endpoint string }

func awsOptionsOf(c *cli.Context) awsOptions {
	return awsOptions{region: str(c, flagRegion), profile: str(c, flagProfile), endpoint: str(c, flagEndpoint)}
}

// dynamoClient loads the standard AWS configuration chain (environment,
// shared files, SSO, web identity, container and instance roles) and
// returns a DynamoDB client. No request is made here.
func dynamoClient(ctx context.Context, ao awsOptions, logger hclog.Logger) (*dynamodb.Client, error) {
	sdkLog := logger.Named("aws")
	opts := []func(*config.LoadOptions) error{
		// The SDK's own warnings (such as an unread error body) are for
		// debugging, not for the user's terminal.
		config.WithLogger(logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
			sdkLog.Debug(fmt.Sprintf(format, v...))
		})),
	}
	if ahead := startDialAhead(ctx, ao.endpoint); ahead != nil {
		opts = append(opts, config.WithHTTPClient(ahead.httpClient()))
	}
	if ao.region != "" {
		opts = append(opts, config.WithRegion(ao.region))
	}
	if ao.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(ao.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %s", oneLine(err.Error()))
	}
	if cfg.Region == "" {
		cfg.Region = imdsRegion(ctx, cfg, sdkLog)
	}
	if cfg.Region == "" {
		return nil, usagef("no AWS region: pass --region or set AWS_REGION (or a region in the AWS profile)")
	}
	endpoint := ao.endpoint
	if endpoint != "" && !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, usagef("--endpoint-url %q: give a URL such as http://localhost:8000", endpoint)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		if logger.IsTrace() {
			o.APIOptions = append(o.APIOptions, traceRequests(sdkLog))
		}
	}), nil
}

// A pendingClient is a DynamoDB client being made in the background: the
// AWS configuration (environment, shared files, the credential chain's
// set-up, perhaps the instance metadata service for the region) loads
// while the main goroutine checks the options and looks up the command,
// the user and the host.
type pendingClient struct {
	done   chan struct{} // closed when client and err are set
	client *dynamodb.Client
	err    error
}

// loadClient starts making a DynamoDB client with dynamoClient. Cancel ctx
// to abandon it; whoever starts it waits for it (wait) before returning.
func loadClient(ctx context.Context, ao awsOptions, logger hclog.Logger) *pendingClient {
	p := &pendingClient{done: make(chan struct{})}
	go func() {
		// The configuration's loading is a deep stack (16 KiB).
		stack.Grow()
		defer close(p.done)
		p.client, p.err = dynamoClient(ctx, ao, logger)
	}()
	return p
}

// wait blocks until the client is made, and returns it or why it could
// not be made.
func (p *pendingClient) wait() (*dynamodb.Client, error) {
	<-p.done
	return p.client, p.err
}

// newLocker returns the backend's Locker. timing is used by DynamoDB only.
func newLocker(ctx context.Context, c *cli.Context, b backend, timing lock.Timing, id lock.Identity, logger hclog.Logger) (lock.Locker, error) {
	var pending *pendingClient
	if !b.local {
		pending = loadClient(ctx, awsOptionsOf(c), logger)
	}
	return makeLocker(c, b, timing, id, pending, logger)
}

// makeLocker returns the backend's Locker, with the DynamoDB client from
// pending (nil for --local).
func makeLocker(c *cli.Context, b backend, timing lock.Timing, id lock.Identity, pending *pendingClient, logger hclog.Logger) (lock.Locker, error) {
	if b.local {
		return lock.NewLocal(lock.LocalConfig{Dir: str(c, flagLockDir), Identity: id, Logger: logger.Named("lock")})
	}
	client, err := pending.wait()
	if err != nil {
		return nil, err
	}
	return lock.NewDynamo(lock.DynamoConfig{
		Client: lock.SDKClient(client), Table: b.table, Timing: timing, Identity: id, Logger: logger.Named("lock"),
	})
}

// cleanupTimeout bounds a release after the command ended: long enough for
// a few DynamoDB retries, short enough that a stuck network does not hold
// the user's terminal (the lease frees the lock anyway).
const cleanupTimeout = 10 * time.Second

// imdsTimeout bounds asking the instance metadata service for the region.
// On EC2 it answers in milliseconds; elsewhere nothing listens and the
// question only delays the "no AWS region" message.
const imdsTimeout = 2 * time.Second

// imdsRegion asks the EC2 instance metadata service for the region, as the
// AWS CLI does on an instance without AWS_REGION, and returns "" when it
// cannot tell. AWS_EC2_METADATA_DISABLED=true and
// AWS_EC2_METADATA_SERVICE_ENDPOINT are honoured. (config.WithEC2IMDSRegion
// would turn "not on EC2" into an error of its own instead of ours.)
func imdsRegion(ctx context.Context, cfg aws.Config, logger hclog.Logger) string {
	ctx, cancel := context.WithTimeout(ctx, imdsTimeout)
	defer cancel()
	out, err := imds.NewFromConfig(cfg).GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil {
		logger.Debug("no region from the instance metadata service", "error", oneLine(err.Error()))
		return ""
	}
	return out.Region
}
