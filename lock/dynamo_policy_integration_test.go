package lock

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/locked-run/locked-run/internal/ddblocal"
)

// Tests of issue 9, points 4 to 6, with the real SDK client: the retry
// policy as users meet it.

// sdkClient returns a real DynamoDB client for endpoint with the given
// credentials provider.
func sdkClient(endpoint string, creds aws.CredentialsProvider) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{Region: ddblocal.Region, Credentials: creds}, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// refusedEndpoint returns a loopback URL on which nothing listens.
func refusedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestDynamoUnreachable(t *testing.T) {
	endpoint := refusedEndpoint(t)
	d, err := NewDynamo(DynamoConfig{Client: sdkClient(endpoint, credentials.NewStaticCredentialsProvider("a", "b", "")), Table: "locks"})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]func(ctx context.Context) error{
		"acquire": func(ctx context.Context) error { _, err := d.Acquire(ctx, "k", AcquireOptions{}); return err },
		"status":  func(ctx context.Context) error { _, err := d.Status(ctx, "k"); return err },
		"list":    func(ctx context.Context) error { _, err := d.List(ctx); return err },
	}
	for name, op := range ops {
		t.Run("an endpoint that refuses connections fails "+name+" within 10s naming it", func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			err := op(ctx)
			took := time.Since(start)
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), endpoint) {
				t.Fatalf("%s = %v, want ErrUnreachable naming %s", name, err, endpoint)
			}
			if took > 12*time.Second {
				t.Errorf("%s gave up after %s, want about 10s", name, took)
			}
			t.Logf("%s gave up after %s: %v", name, took.Round(time.Millisecond), err)
		})
	}
}

// blockingCredentials never answer: an instance metadata service that
// cannot be reached.
type blockingCredentials struct{}

func (blockingCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	<-ctx.Done()
	return aws.Credentials{}, ctx.Err()
}

func TestDynamoCredentials(t *testing.T) {
	for name, creds := range map[string]aws.CredentialsProvider{
		"a credentials source that never answers": blockingCredentials{},
		"no credentials at all": aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no EC2 IMDS role found")
		}),
	} {
		t.Run(name+" fails at once with a line about credentials", func(t *testing.T) {
			t.Parallel()
			d, err := NewDynamo(DynamoConfig{Client: sdkClient(refusedEndpoint(t), creds), Table: "locks"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err = d.Acquire(ctx, "k", AcquireOptions{})
			took := time.Since(start)
			if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Acquire = %v, want one line matching ErrCredentials", err)
			}
			if took > 8*time.Second {
				t.Errorf("took %s, want one request's deadline at most: credentials are not retried", took)
			}
			t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

// skewedProxy forwards to DynamoDB Local as a server whose clock is an hour
// ahead of ours would: its Date header says so, and it refuses a signature
// dated more than five minutes off its clock with DynamoDB's own error.
func skewedProxy(t *testing.T, target string) (string, *int) {
	t.Helper()
	const skew = time.Hour
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		r.Header.Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
		return nil
	}
	refused := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		serverNow := time.Now().Add(skew)
		if err != nil || signed.Sub(serverNow).Abs() > 5*time.Minute {
			*refused++
			w.Header().Set("Date", serverNow.UTC().Format(http.TimeFormat))
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"Signature expired: ` +
				signed.Format("20060102T150405Z") + ` is now earlier than ` + serverNow.Add(-5*time.Minute).Format("20060102T150405Z") + `"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, refused
}

func TestDynamoLocalClockSkew(t *testing.T) {
	env := newITEnv(t)
	endpoint, refused := skewedProxy(t, ddblocal.Endpoint(t))
	d, err := NewDynamo(DynamoConfig{Client: ddblocal.Client(endpoint, nil), Table: env.table, Identity: Identity{Host: "skewed"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := d.Acquire(ctx, "skew", AcquireOptions{})
	if err != nil {
		t.Fatalf("Acquire with a clock an hour behind the server's = %v, want the SDK's skew correction to let it through", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Status(ctx, "skew"); err != nil {
		t.Fatal(err)
	}
	if *refused != 1 {
		t.Errorf("%d requests refused for their signing time, want 1: the first, then the SDK signs with the skew it measured", *refused)
	}
}
