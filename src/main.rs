fn main() {
    deeply_web::start();
}
