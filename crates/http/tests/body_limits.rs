#![allow(unsafe_code)] // a counting GlobalAlloc: the only way to measure peak allocation
//! Bounded resources on every read: the decompressed body cap
//! (`Policy::max_body_bytes`) and the per-request time limit
//! (`Policy::request_timeout`), against hand-written HTTP/1.1 servers on
//! loopback (so a test controls every byte and sees when the client hangs up).
//!
//! The tests of this file run one at a time ([`SERIAL`]) because one of them
//! measures the peak heap of the whole process with a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bankpipe_http::{
    ApiErrorBody, Credentials, Endpoint, HttpClient, HttpError, Method, Policy, DEFAULT_MAX_BODY_BYTES,
};
use flate2::write::GzEncoder;
use flate2::{Compress, Compression, FlushCompress};
use serde_json::json;

/// Counts live heap bytes and their peak, to show the body cap bounds memory.
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only
// counters are updated beside it.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as alloc-then-free: a moving realloc briefly holds both.
            grew(new_size);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: u64 = 1024 * 1024;

fn policy(max_body_bytes: u64) -> Policy {
    Policy {
        max_body_bytes,
        max_retries: 0,
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..Policy::default()
    }
}

/// A loopback HTTP/1.1 server: each connection's request is read (headers
/// and any `Content-Length` body), then `respond` writes the answer on the
/// socket. Returns the endpoint and the number of requests received.
fn serve<F>(respond: F) -> (Endpoint, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (respond, counter) = (Arc::clone(&respond), Arc::clone(&counter));
            std::thread::spawn(move || {
                if read_request(&stream).is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                    respond(stream);
                }
            });
        }
    });
    (Endpoint::new(&base, Credentials::None).unwrap(), requests)
}

fn read_request(stream: &TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)
}

/// A deflate segment that expands to `n` zero bytes, ending on a byte
/// boundary with a non-final block (sync flush): any number of copies in a
/// row is a valid deflate stream, so a server can send an endless one.
fn zeros_segment(n: usize) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(n / 500 + 1024);
    c.compress_vec(&vec![0u8; n], &mut out, FlushCompress::Sync).unwrap();
    assert_eq!(c.total_in(), n as u64);
    out
}

/// A complete gzip body of `n` zero bytes.
fn gzip_zeros(n: usize) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(&vec![0u8; n]).unwrap();
    e.finish().unwrap()
}

const GZIP_HEADERS: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_gzip_stream_stops_at_the_cap_with_bounded_memory() {
    let _serial = SERIAL.lock().await;
    // The server sends a gzip header, then 1 MiB of zeros per ~1 KB segment
    // for ever (it would expand without end), until the client hangs up.
    let segment = Arc::new(zeros_segment(MIB as usize));
    let expanded = Arc::new(AtomicU64::new(0));
    let (hung_up_tx, hung_up) = mpsc::channel::<u64>();
    let hung_up_tx = std::sync::Mutex::new(hung_up_tx);
    let (segment2, expanded2) = (Arc::clone(&segment), Arc::clone(&expanded));
    let (ep, requests) = serve(move |mut s| {
        let mut sent = 0u64;
        let mut result = s.write_all(GZIP_HEADERS.as_bytes());
        result = result.and_then(|()| s.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]));
        while result.is_ok() {
            result = s.write_all(&segment2);
            sent += segment2.len() as u64;
            expanded2.fetch_add(MIB, Ordering::SeqCst);
        }
        let _ = hung_up_tx.lock().unwrap().send(sent);
    });
    let cap = 8 * MIB;
    let client = HttpClient::new(policy(cap)).unwrap();
    let url = ep.url("v1/links/abc/transactions/?page=1").unwrap();

    let baseline = LIVE.load(Ordering::SeqCst);
    PEAK.store(baseline, Ordering::SeqCst);
    let started = Instant::now();
    let err = client.get(&ep, &url).await.unwrap_err();
    let elapsed = started.elapsed();
    let peak_growth = PEAK.load(Ordering::SeqCst).saturating_sub(baseline) as u64;

    match &err {
        HttpError::BodyTooLarge { method, url: u, limit } => {
            assert_eq!((method.as_str(), u.as_str(), *limit), ("GET", url.as_str(), cap));
        }
        other => panic!("expected BodyTooLarge, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(url.as_str()) && message.contains(&cap.to_string()), "{message}");
    assert!(elapsed < Duration::from_secs(20), "stopped promptly, not at the request timeout: {elapsed:?}");
    // The client hung up: the server's next writes fail (once the loopback
    // socket buffers it had filled are gone) and its stream ends.
    let sent = hung_up.recv_timeout(Duration::from_secs(20)).expect("the client closed the connection");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "not retried");
    // Memory: the whole process (server thread included) grew by a small
    // multiple of the cap, though the stream was endless.
    assert!(peak_growth < 3 * cap, "peak heap grew by {peak_growth} bytes (cap {cap})");
    eprintln!(
        "endless gzip: stopped after {elapsed:?}, {sent} compressed bytes written by the server \
         ({} MiB expanded, most never read), peak heap growth {} KiB: {message}",
        expanded.load(Ordering::SeqCst) / MIB,
        peak_growth / 1024
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_body_exactly_at_the_cap_is_read_and_one_byte_more_is_refused() {
    let _serial = SERIAL.lock().await;
    let cap = MIB;
    for (len, ok) in [(cap, true), (cap + 1, false)] {
        let body = Arc::new(gzip_zeros(len as usize));
        let (ep, _) = serve(move |mut s| {
            let _ = s.write_all(GZIP_HEADERS.as_bytes()).and_then(|()| s.write_all(&body));
        });
        let client = HttpClient::new(policy(cap)).unwrap();
        let result = client.get(&ep, &ep.url("page").unwrap()).await;
        match (ok, result) {
            (true, Ok(r)) => assert_eq!(r.body.len() as u64, cap),
            (false, Err(HttpError::BodyTooLarge { limit, .. })) => assert_eq!(limit, cap),
            (_, other) => panic!("{len} bytes against a cap of {cap}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_content_length_over_the_cap_is_refused_before_reading() {
    let _serial = SERIAL.lock().await;
    let (ep, _) = serve(|mut s| {
        // Announces 1 GiB, sends a little, then waits: the client must not.
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
        let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(b"{\"transactions\": ["));
        std::thread::sleep(Duration::from_secs(30));
    });
    let client = HttpClient::new(policy(MIB)).unwrap();
    let url = ep.url("page").unwrap();
    let started = Instant::now();
    let err = client.get(&ep, &url).await.unwrap_err();
    assert!(matches!(&err, HttpError::BodyTooLarge { limit, .. } if *limit == MIB), "{err:?}");
    assert!(err.to_string().contains(url.as_str()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_answered_with_an_oversized_body_is_ambiguous_and_sent_once() {
    let _serial = SERIAL.lock().await;
    let body = Arc::new(gzip_zeros(2 * MIB as usize));
    let (ep, requests) = serve(move |mut s| {
        let _ = s.write_all(GZIP_HEADERS.as_bytes()).and_then(|()| s.write_all(&body));
    });
    let client = HttpClient::new(Policy { max_retries: 3, ..policy(MIB) }).unwrap();
    let url = ep.url("transactions").unwrap();
    let err = client.send(&ep, Method::POST, &url, Some(&json!({"amount": "1.00"}))).await.unwrap_err();
    match &err {
        HttpError::Ambiguous { method, url: u, cause } => {
            assert_eq!((method.as_str(), u.as_str()), ("POST", url.as_str()));
            assert!(cause.contains("1048576") && cause.contains("max_body_bytes"), "{cause}");
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    eprintln!("{err}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "never resent");
    // Declared safe to repeat: the plain BodyTooLarge, still not retried
    // (the same answer would be as large again).
    let err = client.send_idempotent(&ep, Method::POST, &url, None).await.unwrap_err();
    assert!(matches!(err, HttpError::BodyTooLarge { .. }), "{err:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_status_with_an_endless_body_keeps_its_status_and_an_excerpt() {
    let _serial = SERIAL.lock().await;
    let (ep, requests) = serve(|mut s| {
        let head = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n";
        let mut result = s.write_all(head.as_bytes()).and_then(|()| s.write_all(b"<html><h1>Server Error</h1>"));
        let filler = vec![b'x'; 64 * 1024];
        while result.is_ok() {
            result = s.write_all(&filler);
        }
    });
    let client = HttpClient::new(Policy { max_retries: 1, ..policy(DEFAULT_MAX_BODY_BYTES) }).unwrap();
    let started = Instant::now();
    let err = client.get(&ep, &ep.url("page").unwrap()).await.unwrap_err();
    match &err {
        HttpError::Status { status: 500, body, .. } => {
            assert!(
                matches!(&**body, ApiErrorBody::Text(t) if t.starts_with("<html><h1>Server Error</h1>")),
                "{body:?}"
            )
        }
        other => panic!("expected Status 500, got {other:?}"),
    }
    assert_eq!(requests.load(Ordering::SeqCst), 2, "retried once as before");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_response_times_out_naming_the_url() {
    let _serial = SERIAL.lock().await;
    // No answer at all after the request.
    let (silent, _) = serve(|_s| std::thread::sleep(Duration::from_secs(30)));
    // Headers and part of the body, then nothing.
    let (stalled, _) = serve(|mut s| {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
        let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(b"{\"transactions\": ["));
        std::thread::sleep(Duration::from_secs(30));
    });
    let client = HttpClient::new(Policy { request_timeout: Duration::from_millis(300), ..policy(MIB) }).unwrap();
    for ep in [silent, stalled] {
        let url = ep.url("v1/links/abc/transactions/").unwrap();
        let started = Instant::now();
        let err = client.get(&ep, &url).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(matches!(err, HttpError::Transport { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(url.as_str()) && message.contains("timed out"), "{message}");
        eprintln!("{message}");
        // A POST that timed out may have been applied.
        let err = client.send(&ep, Method::POST, &url, Some(&json!({}))).await.unwrap_err();
        assert!(matches!(&err, HttpError::Ambiguous { cause, .. } if cause.contains("timed out")), "{err:?}");
    }
}
