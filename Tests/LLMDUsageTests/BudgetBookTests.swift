import LLMDUsage
import Testing

@Suite("Budgets")
struct BudgetBookTests {
    let session = BudgetKey.session(1)
    let day = BudgetKey.daily("2026-11-21")

    @Test("a call reserves its maximum; concurrent reservations cannot pass the limit together")
    func reservations() throws {
        var book = BudgetBook()
        book.setLimit(BudgetLimit(tokens: 100), for: session)
        #expect(book.unloaded([day, session]) == [session], "only limited budgets need their spending")
        book.load(session, spent: Amount(tokens: 40, cost: .zero))
        let first = try #require(try book.reserve(Amount(tokens: 30, cost: .zero), on: [day, session], costKnown: true))
        #expect(first.keys == [session], "the day has no limit")
        #expect(throws: BudgetExceeded.self) { try book.reserve(Amount(tokens: 31, cost: .zero), on: [session], costKnown: true) }
        let second = try #require(try book.reserve(Amount(tokens: 30, cost: .zero), on: [session], costKnown: true))
        #expect(book.usage(session).reserved.tokens == 60)
        // The first used less than it reserved: the rest goes back.
        book.record(Amount(tokens: 12, cost: .zero), keys: [day, session], releasing: first)
        #expect(book.usage(session).spent?.tokens == 52)
        #expect(book.usage(session).reserved.tokens == 30)
        book.release(second)
        #expect(book.usage(session).reserved == .zero)
        #expect(book.usage(day).spent == nil, "an unloaded budget is not counted")
    }

    @Test("a finished call holds what it used until recorded; a daily limit set once holds every day")
    func resizeAndDaily() throws {
        var book = BudgetBook()
        book.setLimit(BudgetLimit(tokens: 100), for: session)
        book.load(session, spent: .zero)
        let first = try #require(try book.reserve(Amount(tokens: 80, cost: .zero), on: [session], costKnown: true))
        #expect(throws: BudgetExceeded.self) { try book.reserve(Amount(tokens: 30, cost: .zero), on: [session], costKnown: true) }
        let resized = book.resize(first, to: Amount(tokens: 20, cost: .zero))
        #expect(book.usage(session).reserved.tokens == 20)
        let second = try #require(try book.reserve(Amount(tokens: 30, cost: .zero), on: [session], costKnown: true))
        book.record(Amount(tokens: 20, cost: .zero), keys: [session], releasing: resized)
        book.release(second)
        #expect(book.usage(session).reserved == .zero)
        #expect(book.usage(session).spent?.tokens == 20)

        book.setLimit(BudgetLimit(tokens: 5), for: .daily("2026-11-21"))
        #expect(book.limit(.daily("2026-11-22")) == BudgetLimit(tokens: 5))
        #expect(book.ownLimit(BudgetKey.everyDay) == BudgetLimit(tokens: 5))
    }

    @Test("the error names the budget, the reason and the numbers")
    func exceeded() {
        var book = BudgetBook(defaults: [.daily: BudgetLimit(cost: USD(parsing: "1")!)])
        book.load(day, spent: Amount(tokens: 0, cost: USD(parsing: "0.90")!))
        do {
            _ = try book.reserve(Amount(tokens: 10, cost: USD(parsing: "0.20")!), on: [day], costKnown: true)
            Issue.record("reserved past the limit")
        } catch {
            #expect(error.key == day)
            #expect(error.reason == .cost)
            #expect(error.spent.cost == USD(parsing: "0.90"))
            #expect(error.needed.cost == USD(parsing: "0.20"))
        }
        do {
            _ = try book.reserve(Amount(tokens: 10, cost: .zero), on: [day], costKnown: false)
            Issue.record("an unpriced call passed a cost limit")
        } catch {
            #expect(error.reason == .priceUnknown)
        }
    }

    @Test("no limits: nothing is reserved; a budget's own limits go over its kind's defaults")
    func limits() throws {
        var book = BudgetBook()
        #expect(book.isUnlimited)
        #expect(try book.reserve(Amount(tokens: 1_000_000, cost: .zero), on: [day, session], costKnown: false) == nil)
        book.defaults[.session] = BudgetLimit(tokens: 10)
        #expect(!book.isUnlimited)
        #expect(book.limit(.session(7)) == BudgetLimit(tokens: 10))
        book.setLimit(BudgetLimit(tokens: 500), for: .session(7))
        #expect(book.limit(.session(7)) == BudgetLimit(tokens: 500))
        book.setLimit(nil, for: .session(7))
        #expect(book.limit(.session(7)) == BudgetLimit(tokens: 10))
        book.defaults[.session]?.cost = USD(parsing: "1")
        book.setLimit(BudgetLimit(tokens: 500), for: .session(7))
        #expect(book.limit(.session(7)) == BudgetLimit(tokens: 500, cost: USD(parsing: "1")), "a limit not set is the default's")
    }

    @Test("UTC days from microseconds and back")
    func days() {
        #expect(CalendarDay.of(microseconds: 0) == "1970-01-01")
        #expect(CalendarDay.of(microseconds: 1_795_219_200_000_000) == "2026-11-21")
        #expect(CalendarDay.of(microseconds: 1_795_219_200_000_000 - 1) == "2026-11-20")
        #expect(CalendarDay.of(microseconds: 951_782_400_000_000) == "2000-02-29")
        #expect(CalendarDay.of(microseconds: -1) == "1969-12-31")
        #expect(CalendarDay.start(of: "2026-11-21") == 1_795_219_200_000_000)
        #expect(CalendarDay.start(of: "2000-03-01") == 951_868_800_000_000)
        #expect(CalendarDay.start(of: "2026-13-01") == nil)
    }
}
