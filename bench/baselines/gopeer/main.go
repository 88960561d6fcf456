// The Go peer: the webhook service a platform team would write in Go instead of
// plug-pipeline. net/http + encoding/json decoding each body into a struct + one franz-go
// ProduceSync per webhook (acks=all and idempotence, franz-go's defaults otherwise), run
// with GOMAXPROCS=1 by `make bench` (bench/e2e/) so it is measured per core. Same
// durability promise as the ingress (200 only after the broker's ack), none of its
// normalisation, dead-lettering or overload control; like the hand-written Python
// service it publishes the decoded struct re-encoded.
//
//	go build -o gopeer . && GOMAXPROCS=1 ./gopeer -port 18084 -bootstrap 127.0.0.1:19092
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Text is a message's text content.
type Text struct {
	Message *string `json:"message,omitempty"`
}

// Image is a message's image content.
type Image struct {
	ImageURL *string `json:"imageUrl,omitempty"`
	MimeType *string `json:"mimeType,omitempty"`
	Caption  *string `json:"caption,omitempty"`
}

// Audio is a message's audio content.
type Audio struct {
	AudioURL *string `json:"audioUrl,omitempty"`
	MimeType *string `json:"mimeType,omitempty"`
	Seconds  *int64  `json:"seconds,omitempty"`
}

// Document is a message's document content.
type Document struct {
	DocumentURL *string `json:"documentUrl,omitempty"`
	MimeType    *string `json:"mimeType,omitempty"`
	FileName    *string `json:"fileName,omitempty"`
}

// ReceivedMessage is Plug's ReceivedCallback (receive-message) and one entry of a
// transcript's chat.
type ReceivedMessage struct {
	Type               *string         `json:"type,omitempty"`
	InstanceID         *string         `json:"instanceId,omitempty"`
	MessageID          *string         `json:"messageId,omitempty"`
	Phone              *string         `json:"phone,omitempty"`
	FromMe             *bool           `json:"fromMe,omitempty"`
	Momment            *int64          `json:"momment,omitempty"`
	Status             *string         `json:"status,omitempty"`
	ChatName           *string         `json:"chatName,omitempty"`
	SenderName         *string         `json:"senderName,omitempty"`
	SenderPhoto        *string         `json:"senderPhoto,omitempty"`
	Photo              *string         `json:"photo,omitempty"`
	IsGroup            *bool           `json:"isGroup,omitempty"`
	IsNewsletter       *bool           `json:"isNewsletter,omitempty"`
	IsEdit             *bool           `json:"isEdit,omitempty"`
	IsStatusReply      *bool           `json:"isStatusReply,omitempty"`
	WaitingMessage     *bool           `json:"waitingMessage,omitempty"`
	IsAutomaticMessage *bool           `json:"isAutomaticMessage,omitempty"`
	ConnectedPhone     *string         `json:"connectedPhone,omitempty"`
	SenderLid          *string         `json:"senderLid,omitempty"`
	ChatLid            *string         `json:"chatLid,omitempty"`
	ParticipantPhone   *string         `json:"participantPhone,omitempty"`
	Broadcast          *bool           `json:"broadcast,omitempty"`
	Forwarded          *bool           `json:"forwarded,omitempty"`
	FromAPI            *bool           `json:"fromApi,omitempty"`
	Text               *Text           `json:"text,omitempty"`
	Image              *Image          `json:"image,omitempty"`
	Audio              *Audio          `json:"audio,omitempty"`
	Document           *Document       `json:"document,omitempty"`
	Reaction           json.RawMessage `json:"reaction,omitempty"`
	Location           json.RawMessage `json:"location,omitempty"`
}

// MessageStatus is Plug's MessageStatusCallback (message-status).
type MessageStatus struct {
	Status      string   `json:"status"`
	IDs         []string `json:"ids"`
	Phone       *string  `json:"phone,omitempty"`
	Type        *string  `json:"type,omitempty"`
	Momment     *int64   `json:"momment,omitempty"`
	InstanceID  *string  `json:"instanceId,omitempty"`
	PhoneDevice *int64   `json:"phoneDevice,omitempty"`
	IsGroup     *bool    `json:"isGroup,omitempty"`
}

// Customer is an attendance's customer.
type Customer struct {
	Name  *string `json:"name,omitempty"`
	Phone *string `json:"phone,omitempty"`
}

// Attendance is a finished attendance's header.
type Attendance struct {
	AttendanceNumber     json.RawMessage   `json:"attendanceNumber"`
	Customer             Customer          `json:"customer"`
	Departament          *string           `json:"departament,omitempty"`
	Status               *string           `json:"status,omitempty"`
	StartTime            *int64            `json:"startTime,omitempty"`
	EndTime              *int64            `json:"endTime,omitempty"`
	RequestTime          *int64            `json:"requestTime,omitempty"`
	FinishBy             *string           `json:"finishBy,omitempty"`
	Operator             *string           `json:"operator,omitempty"`
	RatingObservation    *string           `json:"ratingObservation,omitempty"`
	AttendanceCategory   json.RawMessage   `json:"attendanceCategory,omitempty"`
	AttendanceCategories []json.RawMessage `json:"attendanceCategories,omitempty"`
}

// FinishAttendance is Plug's finish-attendance body: the header and the transcript.
type FinishAttendance struct {
	Attendance Attendance                 `json:"attendance"`
	Chat       map[string]ReceivedMessage `json:"chat"`
}

func phoneOf(p *string) []byte {
	if p == nil {
		return nil
	}
	return []byte(*p)
}

type server struct {
	client *kgo.Client
	token  []byte
	prefix string
}

// handler decodes a body into a fresh T, takes the record's key from it, and answers 200
// only once the broker has acknowledged the record.
func handler[T any](s *server, topic string, key func(*T) []byte) http.HandlerFunc {
	full := s.prefix + "." + topic
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), s.token) != 1 {
			http.Error(w, `{"detail":"bad token"}`, http.StatusUnauthorized)
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, `{"detail":"unreadable body"}`, http.StatusBadRequest)
			return
		}
		var body T
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, `{"detail":"invalid body"}`, http.StatusUnprocessableEntity)
			return
		}
		value, err := json.Marshal(&body)
		if err != nil {
			http.Error(w, `{"detail":"encode failed"}`, http.StatusInternalServerError)
			return
		}
		rec := &kgo.Record{Topic: full, Key: key(&body), Value: value}
		if err := s.client.ProduceSync(r.Context(), rec).FirstErr(); err != nil {
			http.Error(w, `{"detail":"not published"}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"published"}`))
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.String("port", "18084", "port to listen on")
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "Kafka bootstrap servers")
	flag.Parse()
	token := os.Getenv("GOPEER_TOKEN")
	if token == "" {
		token = "bench-token"
	}
	prefix := os.Getenv("GOPEER_TOPIC_PREFIX")
	if prefix == "" {
		prefix = "gopeer"
	}
	// franz-go's defaults are acks=all with idempotence; both are named so the promise is
	// visible here rather than inherited.
	client, err := kgo.NewClient(
		kgo.SeedBrokers(*bootstrap),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.AllowAutoTopicCreation(),
	)
	if err != nil {
		log.Fatalf("kafka client: %v", err)
	}
	s := &server{client: client, token: []byte(token), prefix: prefix}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/receive-message", handler(s, "message.received",
		func(b *ReceivedMessage) []byte { return phoneOf(b.Phone) }))
	mux.HandleFunc("POST /webhooks/message-status", handler(s, "message.status",
		func(b *MessageStatus) []byte { return phoneOf(b.Phone) }))
	mux.HandleFunc("POST /webhooks/finish-attendance", handler(s, "attendance.finished",
		func(b *FinishAttendance) []byte { return phoneOf(b.Attendance.Customer.Phone) }))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	srv := &http.Server{Addr: *host + ":" + *port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-stop
		// Graceful, as the Python targets: finish what is in flight, then flush.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatalf("listen: %v", err)
	}
	client.Close()
}
