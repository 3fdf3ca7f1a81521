//! The one pipeline every command runs on.
//!
//! [`Pipeline::open`] binds the endpoint; [`Pipeline::run`] starts the
//! receiver thread (with the command's [`Handler`]) and, if the command has
//! one, its [`Job`] (sending lines, a line editor) on a thread of its own,
//! then runs the display loop on the calling thread: every event, from the
//! receiver or from a send, is counted, rendered and written to the
//! [`Display`]'s sink. When the run is over (the job has ended and lingered,
//! the receiver reached its limit or failed, a signal asked, or the reader
//! of the output went away) it stops the receiver and the job, shows what
//! is still queued, and returns how it ended. The command then prints its
//! summary.
//!
//! Output and shutdown are parameters: the same command runs with the
//! process's signals and stdout, or in-process with a manual shutdown and a
//! memory sink.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, after, at, bounded, never, select};

use super::outbox::Outbox;
use super::receiver::{self, Handler, ReceiverConfig, Receiving, Stop, Turn};
use super::shutdown::{Shutdown, Signal};
use crate::Error;
use crate::model::{Event, Security, Summary, Tally};
use crate::net::endpoint::READ_TIMEOUT;
use crate::net::group::{self, GroupOptions};
use crate::net::sys::Scratch;
use crate::net::{Buffers, Endpoint, SocketOptions};
use crate::output::{Display, Shown};

/// How many events may wait between the threads and the display. When the
/// display falls behind, the receiver waits, the socket's queue fills and
/// the kernel drops (and counts) what does not fit: nothing is lost
/// silently.
pub const EVENT_QUEUE: usize = 1024;

/// The most datagrams a single-threaded run answers, one after the other,
/// before it shows their events: a few events each stay well under
/// [`EVENT_QUEUE`], which the display loop drains after them.
const ANSWER_FIRST: usize = 64;

/// How long the socket must be quiet before gathered output is written
/// (a single-threaded run): a ping-pong through an echo does not pay a
/// `write(2)` per round trip, and people see no delay.
pub const QUIET_BEFORE_WRITE: Duration = Duration::from_millis(5);

/// The longest gathered output waits while datagrams keep coming.
pub const LONGEST_UNWRITTEN: Duration = Duration::from_millis(50);

/// Events found queued at once that mean a flood: the threaded display
/// then looks at the queue again only after [`HOLD_UNDER_FLOOD`].
const FLOOD_DRAIN: usize = 32;

/// How long the threaded display lets events gather under a flood: half
/// of [`EVENT_QUEUE`] at half a million datagrams a second (loopback's
/// pace here). Measured with `scripts/bench/typed_during_flood.py`: the
/// chat's kernel drops under a 1,000,000-datagram flood went from 2.3–4.6%
/// (a wake per datagram) to 1.1–1.5%.
const HOLD_UNDER_FLOOD: Duration = Duration::from_micros(1000);

/// A bound endpoint and the channel its events will travel on.
#[derive(Debug)]
pub struct Pipeline {
    /// The socket and the sending end of the event channel. Every sender
    /// (the receiver, the job) gets a clone of this one outbox, so that all
    /// share its ordering lock.
    outbox: Outbox,
    buffers: Buffers,
    max_size: usize,
    events: Receiver<Event>,
    /// The run's counts: every event the display loop shows is counted
    /// here first; the command reads its outcome from it.
    tally: Tally,
}

/// What a run does besides receiving.
pub struct Plan {
    /// What becomes of each datagram.
    pub handler: Box<dyn Handler>,
    /// Stop after this many datagrams.
    pub limit: Option<u64>,
    /// The command's active part, if any.
    pub job: Option<Job>,
    /// What Ctrl-C does.
    pub on_interrupt: OnInterrupt,
    /// After the job ends, keep receiving this long (replies on their way).
    pub linger: Duration,
    /// Wait for datagrams by spinning instead of sleeping in the kernel
    /// (`--busy-poll`; see [`ReceiverConfig::busy_poll`]).
    pub busy_poll: bool,
}

impl Plan {
    /// A plan that only receives, with `handler`, until stopped.
    pub fn receive(handler: impl Handler + 'static) -> Plan {
        Plan {
            handler: Box::new(handler),
            limit: None,
            job: None,
            on_interrupt: OnInterrupt::Stop,
            linger: Duration::ZERO,
            busy_poll: false,
        }
    }
}

/// What Ctrl-C (SIGINT) does during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInterrupt {
    /// End the run.
    Stop,
    /// Tell the job (it stops the action in progress, such as a burst);
    /// the run goes on.
    ForwardToJob,
}

/// A command's active part, run on its own thread (named `dgram-NAME`).
pub struct Job {
    name: &'static str,
    body: Box<dyn FnOnce(JobControl) -> Result<(), Error> + Send>,
    may_block: bool,
}

impl Job {
    /// A job running `body`; it should end soon after
    /// [`JobControl::stopped`] turns true.
    pub fn new(
        name: &'static str,
        body: impl FnOnce(JobControl) -> Result<(), Error> + Send + 'static,
    ) -> Job {
        Job {
            name,
            body: Box::new(body),
            may_block: false,
        }
    }

    /// The job may block where no stop request reaches it (a line editor
    /// waiting for a key): when the run is stopped it is not waited for.
    pub fn may_block(mut self) -> Job {
        self.may_block = true;
        self
    }
}

/// How a job learns that it should stop, or interrupt what it is doing.
#[derive(Debug)]
pub struct JobControl {
    interrupts: Receiver<()>,
    stop: Receiver<()>,
}

impl JobControl {
    /// True once the run asked the job to stop.
    pub fn stopped(&self) -> bool {
        matches!(self.stop.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// True when an interrupt came since the last look (or the job is to
    /// stop); takes the interrupt.
    pub fn interrupted(&self) -> bool {
        self.interrupts.try_recv().is_ok() || self.stopped()
    }

    /// Forgets interrupts that came before now (before an action starts).
    pub fn clear(&self) {
        while self.interrupts.try_recv().is_ok() {}
    }

    /// Waits `duration`; false when an interrupt or a stop request cut the
    /// wait short.
    pub fn pause(&self, duration: Duration) -> bool {
        select! {
            recv(self.stop) -> _ => false,
            recv(self.interrupts) -> _ => false,
            default(duration) => true,
        }
    }

    /// Waits until `changes` is ready (something the job waits for may
    /// have happened: look again), or at most `longest`; false when an
    /// interrupt or a stop request came first.
    pub fn wait_for(&self, changes: &Receiver<()>, longest: Duration) -> bool {
        select! {
            recv(self.stop) -> _ => false,
            recv(self.interrupts) -> _ => false,
            recv(changes) -> _ => true,
            default(longest) => true,
        }
    }

    /// Ready once the job is to stop (for `select!`; it disconnects then).
    pub fn stop_requests(&self) -> &Receiver<()> {
        &self.stop
    }

    /// Ready when an interrupt comes (for `select!`).
    pub fn interrupts(&self) -> &Receiver<()> {
        &self.interrupts
    }
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Ended {
    /// The signal that ended it, if one did.
    pub signal: Option<Signal>,
    /// The job's result, when it had one and it ended (an abandoned job
    /// that is still blocked has none).
    pub job: Option<Result<(), Error>>,
    /// The reader of the output went away (a closed pipe).
    pub reader_gone: bool,
}

impl Pipeline {
    /// Opens the endpoint (bind, buffers set and read back, platform
    /// extras on) with an application receive buffer of `max_size` bytes.
    pub fn open(socket: &SocketOptions, max_size: usize) -> Result<Pipeline, Error> {
        Pipeline::with(Endpoint::open(socket)?, max_size)
    }

    /// Opens a group member's endpoint ([`Endpoint::open_group`]): the
    /// group resolved (its interface looked up), the member's own socket
    /// bound to `socket.bind` (a wildcard address replaced by the
    /// interface's), and the group's shared socket.
    pub fn open_group(
        socket: &SocketOptions,
        max_size: usize,
        group: &GroupOptions,
    ) -> Result<Pipeline, Error> {
        let info = group::resolve(group)?;
        let mut socket = socket.clone();
        socket.bind = group::member_bind(&info, socket.bind);
        Pipeline::with(Endpoint::open_group(&socket, &info)?, max_size)
    }

    fn with(opened: (Endpoint, Buffers), max_size: usize) -> Result<Pipeline, Error> {
        Ok(Pipeline::from_endpoint(opened, max_size))
    }

    /// A pipeline on an endpoint already open (the one `chat --via`
    /// found its path on).
    pub fn from_endpoint((endpoint, buffers): (Endpoint, Buffers), max_size: usize) -> Pipeline {
        let (events_tx, events) = bounded(EVENT_QUEUE);
        Pipeline {
            outbox: Outbox::new(Arc::new(endpoint), events_tx),
            buffers,
            max_size,
            events,
            tally: Tally::default(),
        }
    }

    /// Records every datagram of this pipeline's endpoint in `capture`
    /// (`--pcap`; see [`Endpoint::capture_to`]).
    pub fn capture_to(&self, capture: Option<Arc<crate::net::capture::Capture>>) {
        self.outbox.endpoint().capture_to(capture);
    }

    /// The run's counts (a handle: it stays current after
    /// [`Pipeline::run`] has taken the pipeline).
    pub fn tally(&self) -> Tally {
        self.tally.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.outbox.endpoint().local_addr()
    }

    /// The `listening` event: address, buffers, receive size, capabilities.
    pub fn listening(&self, security: Security) -> Event {
        Event::Listening {
            local: self.local_addr(),
            buffers: self.buffers,
            max_size: self.max_size,
            capabilities: self.outbox.endpoint().capabilities(),
            security,
        }
    }

    /// The `joined` event of a group member: the group, the interface,
    /// TTL and loopback as applied.
    pub fn joined(&self) -> Option<Event> {
        let info = self.outbox.endpoint().group()?;
        Some(Event::Joined(Box::new(info.clone())))
    }

    /// The buffer sizes requested and set.
    pub fn buffers(&self) -> Buffers {
        self.buffers
    }

    /// A sending side that reports into this pipeline's display.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Runs the receiver, the job and the display loop until the run is
    /// over, then stops them in order (see the module docs). Errors are a
    /// receiver failure or output that cannot be written; the job's own
    /// result is in [`Ended::job`].
    pub fn run(
        self,
        display: &mut Display<'_>,
        shutdown: &Shutdown,
        plan: Plan,
    ) -> Result<Ended, Error> {
        if plan.job.is_none() {
            return self.run_inline(display, shutdown, plan);
        }
        let outbox = self.outbox;
        let (receiver_stop, stop) = bounded::<()>(0);
        let config = ReceiverConfig {
            max_size: self.max_size,
            limit: plan.limit,
            busy_poll: plan.busy_poll,
        };
        let receiver = receiver::spawn(outbox.clone(), config, plan.handler, stop)?;
        let mut run = Run {
            receiver_stop: Some(receiver_stop),
            receiver_done: notify_on_exit("receiver", receiver)?,
            receiver_result: None,
            job_stop: None,
            job_done: never(),
            job_running: false,
            job_may_block: false,
            interrupt: None,
            stopping: false,
            ended: Ended::default(),
        };
        if let Some(job) = plan.job {
            run.start_job(job)?;
        }

        let mut signals = shutdown.requests().clone();
        let mut linger = never();
        let events = self.events;
        let tally = self.tally;
        // Lines are written once the events queued so far are shown, in
        // one write rather than one per event.
        display.batch_writes(true)?;
        // Under a flood the display stops watching the queue for a moment
        // after each drain, so that events gather and the receiver does
        // not wake this thread for every datagram.
        let mut watched = events.clone();
        let mut resume = never();
        while !run.over() {
            // A write that finds the reader gone ends the run there, not
            // at the next event.
            if events.is_empty() && display.flush()? == Shown::ReaderGone {
                run.reader_gone();
            }
            let flush = display.next_flush().map_or_else(never, at);
            select! {
                recv(flush) -> _ => {
                    if display.flush_due()? == Shown::ReaderGone {
                        run.reader_gone();
                    }
                }
                recv(resume) -> _ => {
                    resume = never();
                    watched = events.clone();
                }
                recv(watched) -> event => {
                    // `outbox` is held here, so the channel stays open.
                    let Ok(event) = event else { continue };
                    let mut shown = report(&tally, display, &event)?;
                    let mut drained = 1;
                    for event in events.try_iter().take(EVENT_QUEUE) {
                        drained += 1;
                        if report(&tally, display, &event)? == Shown::ReaderGone {
                            shown = Shown::ReaderGone;
                        }
                    }
                    if shown == Shown::ReaderGone {
                        run.reader_gone();
                    }
                    if drained >= FLOOD_DRAIN {
                        watched = never();
                        resume = after(HOLD_UNDER_FLOOD);
                    }
                }
                recv(run.receiver_done) -> result => {
                    run.receiver_result = Some(result.unwrap_or(Ok(())));
                    run.receiver_done = never();
                    // On its own the receiver ends only at its limit or on
                    // a failure: the run is over either way.
                    run.stop_all();
                }
                recv(run.job_done) -> result => {
                    run.ended.job = Some(result.unwrap_or(Ok(())));
                    run.job_done = never();
                    run.job_running = false;
                    run.job_stop = None;
                    if plan.linger.is_zero() || run.stopping {
                        run.stop_all();
                    } else {
                        linger = after(plan.linger);
                    }
                }
                recv(signals) -> request => match request {
                    // No request can come any more.
                    Err(_) => signals = never(),
                    Ok(Signal::Interrupt)
                        if plan.on_interrupt == OnInterrupt::ForwardToJob && run.job_running =>
                    {
                        if let Some(interrupt) = &run.interrupt {
                            let _ = interrupt.try_send(());
                        }
                    }
                    Ok(signal) => {
                        run.ended.signal.get_or_insert(signal);
                        run.stop_all();
                    }
                },
                recv(linger) -> _ => {
                    linger = never();
                    run.stop_all();
                }
            }
        }
        show_last(outbox, &tally, display, &events)?;
        if let Some(Err(error)) = run.receiver_result.take() {
            return Err(error);
        }
        Ok(run.ended)
    }

    /// The run of a plan without a job, on the calling thread alone: each
    /// turn receives one datagram (the handler answers it first, as ever),
    /// and the ones queued behind it (up to [`ANSWER_FIRST`]), then shows
    /// the events they made into the display's batch, which is
    /// written once the socket has been quiet for [`QUIET_BEFORE_WRITE`],
    /// or has waited [`LONGEST_UNWRITTEN`], or is full. No event crosses a
    /// thread, and nothing but `recvmsg` and the handler's `sendto`
    /// happens between two datagrams, in a burst or in a ping-pong.
    ///
    /// The event channel is drained after every turn, so it never holds
    /// more than one turn's events: at most a few per datagram for
    /// [`ANSWER_FIRST`] datagrams, or one per ICMP error read in one go
    /// (256), well under [`EVENT_QUEUE`].
    fn run_inline(
        self,
        display: &mut Display<'_>,
        shutdown: &Shutdown,
        plan: Plan,
    ) -> Result<Ended, Error> {
        let outbox = self.outbox;
        let events = self.events;
        let tally = self.tally;
        let config = ReceiverConfig {
            max_size: self.max_size,
            limit: plan.limit,
            busy_poll: plan.busy_poll,
        };
        let mut receiving = Receiving::new(outbox.clone(), config, plan.handler);
        let mut buf = vec![0u8; self.max_size];
        let mut scratch = Scratch::default();
        let signals = shutdown.requests();
        let mut ended = Ended::default();
        display.batch_writes(true)?;
        // Since when output has waited to be written.
        let mut pending: Option<Instant> = None;
        let mut end = loop {
            if let Ok(signal) = signals.try_recv() {
                ended.signal = Some(signal);
                break Stop::Asked;
            }
            receiving.cap_wait(if pending.is_some() {
                QUIET_BEFORE_WRITE
            } else {
                READ_TIMEOUT
            });
            let mut turn = receiving.step(&mut buf, &mut scratch);
            // Answer what else is queued already before anything is shown:
            // the next datagram of a burst or of a ping-pong then waits for
            // nothing but `recvmsg` and the handler's `sendto`, and the
            // display's work waits until the socket is empty (or
            // ANSWER_FIRST datagrams were answered).
            if matches!(turn, Ok(Turn::Datagram)) {
                for _ in 0..ANSWER_FIRST {
                    match receiving.step_queued(&mut buf, &mut scratch) {
                        Ok(Turn::Datagram) => {}
                        Ok(Turn::Idle) => break,
                        Err(stop) => {
                            turn = Err(stop);
                            break;
                        }
                    }
                }
            }
            if show_queued(&tally, display, &events)? == Shown::ReaderGone {
                ended.reader_gone = true;
                break Stop::ReaderGone;
            }
            match turn {
                Ok(Turn::Datagram) => {
                    if display.has_batched() {
                        let since = *pending.get_or_insert_with(Instant::now);
                        if since.elapsed() >= LONGEST_UNWRITTEN {
                            pending = None;
                            if display.flush()? == Shown::ReaderGone {
                                ended.reader_gone = true;
                                break Stop::ReaderGone;
                            }
                        }
                    }
                }
                Ok(Turn::Idle) => {
                    // The socket has been quiet: write what was gathered,
                    // then wait for the next datagram. A reader that has
                    // gone (seen by a write, or by a look at the output
                    // while idle) ends the run now, not at a datagram.
                    pending = None;
                    if display.flush()? == Shown::ReaderGone
                        || display.flush_due()? == Shown::ReaderGone
                        || display.reader_gone()
                    {
                        ended.reader_gone = true;
                        break Stop::ReaderGone;
                    }
                }
                Err(stop) => break stop,
            }
        };
        if matches!(end, Stop::Asked)
            && let Err(stop) = receiving.drain(&mut buf, &mut scratch, || {
                show_queued(&tally, display, &events)
                    .map(|_| ())
                    .map_err(Stop::Failed)
            })
        {
            end = stop;
        }
        let result = receiving.finish(end);
        drop(receiving);
        show_last(outbox, &tally, display, &events)?;
        result.map(|()| ended)
    }
}

/// The end of a run: an ICMP error that came in after the receiver's last
/// look, then whatever is still queued, shown; held lines let go, and the
/// batch written.
fn show_last(
    outbox: Outbox,
    tally: &Tally,
    display: &mut Display<'_>,
    events: &Receiver<Event>,
) -> Result<(), Error> {
    let _ = outbox.report_pending();
    // The last outbox: the channel closes behind what it queued.
    drop(outbox);
    show_queued(tally, display, events)?;
    display.flush_held()?;
    display.batch_writes(false)?;
    Ok(())
}

/// Shows every event queued now.
fn show_queued(
    tally: &Tally,
    display: &mut Display<'_>,
    events: &Receiver<Event>,
) -> Result<Shown, Error> {
    let mut shown = Shown::Yes;
    for event in events.try_iter() {
        if report(tally, display, &event)? == Shown::ReaderGone {
            shown = Shown::ReaderGone;
        }
    }
    Ok(shown)
}

/// The state of the display loop.
struct Run {
    /// Dropping it asks the receiver to stop.
    receiver_stop: Option<Sender<()>>,
    receiver_done: Receiver<Result<(), Error>>,
    receiver_result: Option<Result<(), Error>>,
    /// Dropping it asks the job to stop.
    job_stop: Option<Sender<()>>,
    job_done: Receiver<Result<(), Error>>,
    job_running: bool,
    job_may_block: bool,
    interrupt: Option<Sender<()>>,
    stopping: bool,
    ended: Ended,
}

impl Run {
    /// Starts the job on its own thread (`dgram-NAME`), with its stop and
    /// interrupt channels.
    fn start_job(&mut self, job: Job) -> Result<(), Error> {
        let (job_stop, stop) = bounded::<()>(0);
        let (interrupt, interrupts) = bounded::<()>(1);
        let control = JobControl { interrupts, stop };
        let body = job.body;
        let handle = thread::Builder::new()
            .name(format!("dgram-{}", job.name))
            .spawn(move || body(control))
            .map_err(|source| Error::SpawnThread {
                name: job.name,
                source,
            })?;
        self.job_done = notify_on_exit(job.name, handle)?;
        self.job_stop = Some(job_stop);
        self.job_running = true;
        self.job_may_block = job.may_block;
        self.interrupt = Some(interrupt);
        Ok(())
    }

    /// Asks the receiver and the job to stop.
    fn stop_all(&mut self) {
        self.stopping = true;
        self.receiver_stop = None;
        self.job_stop = None;
    }

    /// The reader of the output has gone away: the run stops (once).
    fn reader_gone(&mut self) {
        if !self.ended.reader_gone {
            self.ended.reader_gone = true;
            self.stop_all();
        }
    }

    /// The receiver has ended, and so has the job (or it may be blocked
    /// where a stop cannot reach it, and the run is stopping).
    fn over(&self) -> bool {
        self.receiver_result.is_some()
            && (!self.job_running || (self.stopping && self.job_may_block))
    }
}

/// Joins `thread` on a helper thread and hands its result over a channel,
/// so that the end of a thread can be waited for with `select!`.
fn notify_on_exit(
    name: &'static str,
    handle: JoinHandle<Result<(), Error>>,
) -> Result<Receiver<Result<(), Error>>, Error> {
    let (tx, rx) = bounded(1);
    thread::Builder::new()
        .name(format!("dgram-{name}-watch"))
        .spawn(move || {
            let result = handle.join().unwrap_or(Err(Error::ThreadPanicked { name }));
            let _ = tx.send(result);
        })
        .map_err(|source| Error::SpawnThread { name, source })?;
    Ok(rx)
}

/// Counts `event` in `tally`, then shows it (with the peer transitions it
/// caused): the one way an event reaches the screen.
pub fn report(tally: &Tally, display: &mut Display<'_>, event: &Event) -> Result<Shown, Error> {
    let transitions = tally.record(event);
    display.show(event, &transitions)
}

/// Shows the `summary` event with the totals so far (and what the display
/// counted instead of showing), and returns the totals.
pub fn report_summary(tally: &Tally, display: &mut Display<'_>) -> Result<Summary, Error> {
    let (mut totals, peers) = tally.summary();
    totals.not_shown = display.not_shown();
    report(
        tally,
        display,
        &Event::Summary {
            totals: Box::new(totals),
            peers,
        },
    )?;
    Ok(totals)
}
